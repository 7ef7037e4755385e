//! The client's request body on its way upstream: metered, limited, and timed.
//!
//! `client_body_timeout` has nginx's meaning: the longest wait between two successive reads
//! of the body, not a limit on the whole upload. A client that stalls longer gets 408
//! (`client_body_timeout`), and because the wait was on the client, the upstream is never
//! blamed for it: the proxy's read timeout only runs while the upstream holds the request
//! (see `BodyMeter::upstream_idle_since_ms` and proxy.rs).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::clock::now_ms;
use crate::config::Limits;
use crate::errors::Reject;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Upload progress, shared between the body (owned by the upstream connection) and the handler.
#[derive(Default)]
pub struct BodyMeter {
    pub bytes: AtomicU64,
    pub too_large: AtomicBool,
    pub client_failed: AtomicBool,
    /// The client went quiet for longer than `client_body_timeout`.
    pub client_timed_out: AtomicBool,
    /// The client closed the connection or reset the stream before the body's end.
    pub client_left: AtomicBool,
    /// The body is waiting for the client (it was asked for more and has none yet).
    waiting_on_client: AtomicBool,
    /// Monotonic ms (clock.rs) when the body last handed data on, or began, or ended.
    handed_ms: AtomicU64,
}

impl BodyMeter {
    /// Why the upload failed, if the client is to blame (the upstream is then not).
    pub fn client_fault(&self) -> Option<Reject> {
        if self.too_large.load(Ordering::Relaxed) {
            Some(Reject::BodyTooLarge)
        } else if self.client_timed_out.load(Ordering::Relaxed) {
            Some(Reject::ClientBodyTimeout)
        } else if self.client_left.load(Ordering::Relaxed) {
            Some(Reject::ClientClosed)
        } else if self.client_failed.load(Ordering::Relaxed) {
            Some(Reject::BadRequest("the request body could not be read"))
        } else {
            None
        }
    }

    /// Since when (monotonic ms) the upstream side has been the one we wait on: None while
    /// the body waits for the client, whose own timeout then applies.
    pub fn upstream_idle_since_ms(&self) -> Option<u64> {
        if self.waiting_on_client.load(Ordering::Relaxed) {
            return None;
        }
        Some(self.handed_ms.load(Ordering::Relaxed))
    }
}

pub struct RequestBody {
    inner: Option<Incoming>,
    /// A body that was read whole first (for Python access plugins), sent as one frame.
    full: Option<Bytes>,
    meter: Option<Arc<BodyMeter>>,
    limit: u64,
    timeout: Duration,
    /// Made on the first wait for the client (small bodies never need one), then reused.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs for the current wait (reset at each piece of data).
    armed: bool,
}

/// Why the body stopped the upload; the meter's flags say the same to the handler.
#[derive(Debug)]
enum UploadStopped {
    BodyLimitExceeded,
    ClientBodyTimedOut,
}

impl std::fmt::Display for UploadStopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            UploadStopped::BodyLimitExceeded => "request body exceeds the configured limit",
            UploadStopped::ClientBodyTimedOut => {
                "the client stopped sending its request body (client_body_timeout)"
            }
        })
    }
}

impl std::error::Error for UploadStopped {}

impl RequestBody {
    /// Returns the body and, if the client sends one, the meter to read its progress from.
    pub fn new(incoming: Incoming, limits: &Limits) -> (RequestBody, Option<Arc<BodyMeter>>) {
        let mut body = RequestBody {
            inner: None,
            full: None,
            meter: None,
            limit: limits.max_body_bytes,
            timeout: Duration::from_millis(limits.client_body_timeout_ms.max(1)),
            timer: None,
            armed: false,
        };
        if incoming.is_end_stream() {
            return (body, None);
        }
        let meter = Arc::new(BodyMeter::default());
        meter.handed_ms.store(now_ms(), Ordering::Relaxed);
        body.inner = Some(incoming);
        body.meter = Some(meter.clone());
        (body, Some(meter))
    }

    /// A body already read (and counted) whole.
    pub fn full(body: Bytes) -> RequestBody {
        RequestBody {
            inner: None,
            full: (!body.is_empty()).then_some(body),
            meter: None,
            limit: u64::MAX,
            timeout: Duration::MAX,
            timer: None,
            armed: false,
        }
    }

    /// The upload's meter (None: no body, or one read whole already).
    pub fn meter(&self) -> Option<Arc<BodyMeter>> {
        self.meter.clone()
    }
}

/// The body broke off because the client left, not because it sent something malformed:
/// the connection ended before the declared length (HTTP/1), or the client reset the
/// stream or the connection (HTTP/2).
fn client_went_away(e: &hyper::Error) -> bool {
    use std::error::Error as _;
    if e.is_incomplete_message() || e.is_closed() {
        return true;
    }
    let mut cause = e.source();
    while let Some(c) = cause {
        if let Some(io) = c.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
            );
        }
        if let Some(h2) = c.downcast_ref::<h2::Error>() {
            return (h2.is_reset() && h2.is_remote()) || h2.is_go_away() || h2.is_io();
        }
        cause = c.source();
    }
    false
}

/// Nothing has come from the client yet on this wait: run the timer; Ready on expiry.
fn wait_for_client(
    timer: &mut Option<Pin<Box<Sleep>>>,
    armed: &mut bool,
    timeout: Duration,
    cx: &mut Context<'_>,
) -> Poll<()> {
    if !*armed {
        let deadline = Instant::now() + timeout;
        match timer.as_mut() {
            Some(t) => t.as_mut().reset(deadline),
            None => *timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
        }
        *armed = true;
    }
    timer.as_mut().expect("armed above").as_mut().poll(cx)
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(this.full.take().map(|b| Ok(Frame::data(b))));
        };
        let meter = this.meter.as_ref().expect("a body always has a meter");
        let polled = Pin::new(inner).poll_frame(cx);
        if polled.is_pending() {
            meter.waiting_on_client.store(true, Ordering::Relaxed);
            if wait_for_client(&mut this.timer, &mut this.armed, this.timeout, cx).is_ready() {
                meter.client_timed_out.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(Box::new(UploadStopped::ClientBodyTimedOut))));
            }
            return Poll::Pending;
        }
        this.armed = false;
        meter.waiting_on_client.store(false, Ordering::Relaxed);
        meter.handed_ms.store(now_ms(), Ordering::Relaxed);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = meter.bytes.fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > this.limit {
                        meter.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(UploadStopped::BodyLimitExceeded))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                meter.client_failed.store(true, Ordering::Relaxed);
                if client_went_away(&e) {
                    meter.client_left.store(true, Ordering::Relaxed);
                }
                Poll::Ready(Some(Err(Box::new(e))))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => unreachable!("handled above"),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.full.is_none() && self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        match (&self.inner, &self.full) {
            (Some(b), _) => b.size_hint(),
            (None, Some(full)) => SizeHint::with_exact(full.len() as u64),
            (None, None) => SizeHint::with_exact(0),
        }
    }
}
