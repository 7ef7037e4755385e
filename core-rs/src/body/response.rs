//! The response body on its way to the client, streamed frame by frame and never buffered
//! whole. It holds the upstream's connection until the body has been read to the end (then
//! checks it back into the pool) and the call's `CallLog` (records/call_log.rs): the record is
//! finished when the last byte has been handed to the client (or the client went away), so
//! latency and bytes are the real ones.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};

use crate::conn_idle::InFlight;
use crate::grpc;
use crate::records::CallLog;
use crate::upstream::pool::{ActiveRequest, Sender};
use crate::upstream::Target;

/// The upstream's keep-alive connection rides along with its response body and goes back to
/// the pool only once that body has been read to the end.
pub struct UpstreamConn {
    pub target: Arc<Target>,
    pub worker: usize,
    pub sender: Sender,
    pub active: ActiveRequest,
}

/// What the client connection (conn_io.rs) learnt that the call record should say.
#[derive(Default)]
pub struct ConnFlags {
    /// The client stopped reading for longer than `send_timeout`; the connection is closed.
    pub send_timed_out: AtomicBool,
    /// A 101 went out: the bytes that follow are another protocol's, not HTTP responses.
    pub upgraded: AtomicBool,
}

enum Source {
    Generated(Option<Bytes>),
    Upstream(Incoming, Option<UpstreamConn>),
}

pub struct ResponseBody {
    source: Source,
    log: Option<CallLog>,
    completed: bool,
    /// The connection it is sent on (set by conn.rs), to tell a send timeout apart.
    conn_flags: Option<Arc<ConnFlags>>,
    /// Keeps the connection busy (no idle timeout) until hyper drops the body; last, so it
    /// is released after the record is finished and the upstream connection checked in.
    #[allow(dead_code)] // held for its Drop
    in_flight: Option<InFlight>,
}

impl ResponseBody {
    pub fn generated(body: Bytes, log: CallLog) -> ResponseBody {
        ResponseBody {
            // An empty body is over before it starts: HTTP/2 then ends the stream with the
            // headers (gRPC's trailers-only refusals need that), not with an empty DATA frame.
            source: Source::Generated((!body.is_empty()).then_some(body)),
            log: Some(log),
            completed: false,
            conn_flags: None,
            in_flight: None,
        }
    }

    pub fn upstream(body: Incoming, conn: UpstreamConn, log: CallLog) -> ResponseBody {
        ResponseBody {
            source: Source::Upstream(body, Some(conn)),
            log: Some(log),
            completed: false,
            conn_flags: None,
            in_flight: None,
        }
    }

    /// The empty body of a 101: the call's record travels with the WebSocket relay instead.
    pub fn switching() -> ResponseBody {
        ResponseBody {
            source: Source::Generated(None),
            log: None,
            completed: true,
            conn_flags: None,
            in_flight: None,
        }
    }

    /// Sent on this client connection: its send timeout is recorded as this call's end, and
    /// the request counts as in flight until the body is dropped.
    pub fn on_connection(&mut self, flags: Arc<ConnFlags>, in_flight: InFlight) {
        self.conn_flags = Some(flags);
        self.in_flight = Some(in_flight);
    }

    fn count_out(&mut self, n: usize) {
        if let Some(log) = self.log.as_mut() {
            log.record.bytes_out += n as u64;
        }
    }

    /// A connection whose response was cut short (a broken upstream body, a client that left)
    /// is in an unknown state: close it rather than check it back into the pool.
    fn discard_connection(&mut self) {
        if let Source::Upstream(_, conn) = &mut self.source {
            conn.take();
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
                } else if let (Some(trailers), Some(log)) = (frame.trailers_ref(), &mut this.log) {
                    if log.grpc {
                        log.record.grpc_status = grpc::status_in(trailers).unwrap_or("");
                    }
                }
                if this.is_end_stream() {
                    this.complete();
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(log) = this.log.as_mut() {
                    log.record.error_kind = "upstream_body_error";
                }
                this.discard_connection();
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
        let send_timed_out = self
            .conn_flags
            .as_ref()
            .is_some_and(|f| f.send_timed_out.load(Ordering::Relaxed));
        if let Some(log) = self.log.as_mut() {
            if send_timed_out {
                log.record.error_kind = "send_timeout";
            }
            // The client left (or reset the stream) with the bytes counted so far: 499.
            log.mark_ended_early();
        }
        self.discard_connection();
        self.complete();
    }
}
