//! Bodies on both sides of the proxy, streamed frame by frame and never buffered whole.
//!
//! `RequestBody` meters what the client uploads and enforces the body limit as it streams.
//! `ResponseBody` carries the call's `CallLog`: the record is finished when the last byte has
//! been handed to the client (or the client went away), so latency and bytes are the real ones.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::records::CallRecord;
use crate::state::Shared;
use crate::upstream::pool::{ActiveRequest, Sender};
use crate::upstream::Target;

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Upload progress, shared between the body (owned by the upstream connection) and the handler.
#[derive(Default)]
pub struct BodyMeter {
    pub bytes: AtomicU64,
    pub too_large: AtomicBool,
    pub client_failed: AtomicBool,
}

pub struct RequestBody {
    inner: Option<Incoming>,
    /// A body that was read whole first (for Python access plugins), sent as one frame.
    full: Option<Bytes>,
    meter: Option<Arc<BodyMeter>>,
    limit: u64,
}

#[derive(Debug)]
struct BodyLimitExceeded;

impl std::fmt::Display for BodyLimitExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body exceeds the configured limit")
    }
}

impl std::error::Error for BodyLimitExceeded {}

impl RequestBody {
    /// Returns the body and, if the client sends one, the meter to read its progress from.
    pub fn new(incoming: Incoming, limit: u64) -> (RequestBody, Option<Arc<BodyMeter>>) {
        if incoming.is_end_stream() {
            let body = RequestBody {
                inner: None,
                full: None,
                meter: None,
                limit,
            };
            return (body, None);
        }
        let meter = Arc::new(BodyMeter::default());
        let body = RequestBody {
            inner: Some(incoming),
            full: None,
            meter: Some(meter.clone()),
            limit,
        };
        (body, Some(meter))
    }

    /// A body already read (and counted) whole.
    pub fn full(body: Bytes) -> RequestBody {
        RequestBody {
            inner: None,
            full: (!body.is_empty()).then_some(body),
            meter: None,
            limit: u64::MAX,
        }
    }
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
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let total = meter.bytes.fetch_add(data.len() as u64, Ordering::Relaxed)
                        + data.len() as u64;
                    if total > this.limit {
                        meter.too_large.store(true, Ordering::Relaxed);
                        return Poll::Ready(Some(Err(Box::new(BodyLimitExceeded))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                meter.client_failed.store(true, Ordering::Relaxed);
                Poll::Ready(Some(Err(Box::new(e))))
            }
            other => other.map(|o| o.map(|r| r.map_err(|e| Box::new(e) as BoxError))),
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

/// The call record under construction, pushed to the buffer exactly once.
pub struct CallLog {
    pub record: CallRecord,
    started: Instant,
    shared: Arc<Shared>,
    worker: usize,
    /// Off when the config turns call records off; the record then only carries what the
    /// response itself needs (status, request id).
    keep: bool,
    /// The route has Python `log` plugins: they get a copy of the finished record.
    pub python_log: bool,
}

impl CallLog {
    pub fn new(
        record: CallRecord,
        started: Instant,
        shared: Arc<Shared>,
        worker: usize,
        keep: bool,
    ) -> Self {
        CallLog {
            record,
            started,
            shared,
            worker,
            keep,
            python_log: false,
        }
    }

    fn finish(mut self) {
        self.record.latency_us = self.started.elapsed().as_micros() as u64;
        let stats = self.shared.stats.worker(self.worker);
        stats.count_response(self.record.status);
        if self.python_log {
            self.shared.bridge.tell_log(self.record.clone());
        }
        if self.keep {
            self.shared.records.push(self.record);
        }
    }
}

/// The upstream's keep-alive connection rides along with its response body and goes back to
/// the pool only once that body has been read to the end.
pub struct UpstreamConn {
    pub target: Arc<Target>,
    pub worker: usize,
    pub sender: Sender,
    pub active: ActiveRequest,
}

enum Source {
    Generated(Option<Bytes>),
    Upstream(Incoming, Option<UpstreamConn>),
}

pub struct ResponseBody {
    source: Source,
    log: Option<CallLog>,
    completed: bool,
}

impl ResponseBody {
    pub fn generated(body: Bytes, log: CallLog) -> ResponseBody {
        ResponseBody {
            source: Source::Generated(Some(body)),
            log: Some(log),
            completed: false,
        }
    }

    pub fn upstream(body: Incoming, conn: UpstreamConn, log: CallLog) -> ResponseBody {
        ResponseBody {
            source: Source::Upstream(body, Some(conn)),
            log: Some(log),
            completed: false,
        }
    }

    fn count_out(&mut self, n: usize) {
        if let Some(log) = self.log.as_mut() {
            log.record.bytes_out += n as u64;
        }
    }

    fn complete(&mut self) {
        self.completed = true;
        if let Source::Upstream(_, conn) = &mut self.source {
            if let Some(c) = conn.take() {
                c.target.checkin(c.worker, c.sender);
            }
        }
        if let Some(log) = self.log.take() {
            log.finish();
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = &mut *self;
        let polled = match &mut this.source {
            Source::Generated(body) => Poll::Ready(body.take().map(|b| Ok(Frame::data(b)))),
            Source::Upstream(body, _) => Pin::new(body).poll_frame(cx),
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len();
                    this.count_out(n);
                }
                if this.is_end_stream() {
                    this.complete();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(log) = this.log.as_mut() {
                    log.record.error_kind = "upstream_body_error";
                }
                if let Source::Upstream(_, conn) = &mut this.source {
                    conn.take(); // a broken connection is not reusable
                }
                this.complete();
            }
            Poll::Ready(None) => this.complete(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.source {
            Source::Generated(body) => body.is_none(),
            Source::Upstream(body, _) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.source {
            Source::Generated(body) => {
                SizeHint::with_exact(body.as_ref().map_or(0, |b| b.len() as u64))
            }
            Source::Upstream(body, _) => body.size_hint(),
        }
    }
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        if self.log.is_none() {
            return;
        }
        // hyper may stop polling once the declared length was sent, or never poll an empty
        // body: both are complete. Anything else means the client left mid-response.
        if self.is_end_stream() || matches!(self.source, Source::Generated(_)) {
            self.complete();
            return;
        }
        if let Some(log) = self.log.as_mut() {
            if log.record.error_kind.is_empty() {
                log.record.error_kind = "client_closed";
            }
        }
        if let Source::Upstream(_, conn) = &mut self.source {
            conn.take();
        }
        self.complete();
    }
}
