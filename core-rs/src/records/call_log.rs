//! The log phase: the call record under construction travels with the response body
//! (body/response.rs) and is finished once, when the client has the last byte or went away.
//!
//! Every call the core counts (`requests_total`) becomes exactly one record: a `CallLog`
//! dropped before it was finished (its handler future dropped by hyper because the client
//! closed or reset the stream, or by the worker when the shutdown grace ran out) writes its
//! record from its `Drop`, with what is known by then (route, consumer, upstream, bytes,
//! time until the drop).

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use super::CallRecord;
use crate::body::BodyMeter;
use crate::state::Shared;

/// The status recorded for a call whose client left before it had its whole answer
/// (nginx's 499 "client closed request"); `error_kind` is `client_closed`.
pub const CLIENT_CLOSED: u16 = 499;
/// The status recorded for a call cut because the shutdown grace ran out before it had an
/// answer (none was sent; the connection was closed); `error_kind` is `gateway_shutdown`.
pub const SHUTDOWN_CUT: u16 = 503;

thread_local! {
    /// Set on a worker thread once its shutdown grace is over: what its runtime drops from
    /// then on was cut by the gateway, not left by the client.
    static WORKER_STOPPED: Cell<bool> = const { Cell::new(false) };
}

/// Called by a worker (server.rs) after its grace, before its runtime drops what is left.
pub fn worker_stopped() {
    WORKER_STOPPED.with(|s| s.set(true));
}

/// A call ending early on this thread now was cut by the gateway's shutdown.
pub fn cut_by_shutdown() -> bool {
    WORKER_STOPPED.try_with(Cell::get).unwrap_or(false)
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
    /// The route's slot in the per-route counters (None: not routed).
    pub metrics_slot: Option<u16>,
    /// A gRPC call (grpc.rs): refusals answer in gRPC's form, `grpc-status` is recorded.
    pub grpc: bool,
    /// W3C trace context of the call (trace_context.rs), set at accept.
    pub trace: Option<crate::trace_context::TraceContext>,
    /// Sampled with an OTLP exporter configured: the finished call becomes a span.
    pub export_span: bool,
    /// The request body's progress while it streams upstream: its bytes are added to
    /// `bytes_in` when the record is written, however far the upload got.
    pub upload: Option<Arc<BodyMeter>>,
    /// Written (or dropped with `keep` off): `Drop` does nothing more.
    finished: bool,
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
            metrics_slot: None,
            grpc: false,
            trace: None,
            export_span: false,
            upload: None,
            finished: false,
        }
    }

    /// This worker's live counters.
    pub fn stats(&self) -> &crate::stats::WorkerStats {
        self.shared.stats.worker(self.worker)
    }

    /// The log phase: count the response, observe the route's latency, hand Python `log`
    /// plugins their copy and keep the record.
    pub(crate) fn finish(mut self) {
        self.write();
    }

    /// A call that ends before its client had the whole answer: 499 `client_closed`, or
    /// `gateway_shutdown` when the worker cut it (503 if no status was sent yet). A kind
    /// already known (send_timeout...) stays.
    pub(crate) fn mark_ended_early(&mut self) {
        let r = &mut self.record;
        if cut_by_shutdown() {
            if r.error_kind.is_empty() {
                r.error_kind = "gateway_shutdown";
            }
            if r.status == 0 {
                r.status = SHUTDOWN_CUT;
            }
        } else if r.error_kind.is_empty() || r.error_kind == "client_closed" {
            r.status = CLIENT_CLOSED;
            r.error_kind = "client_closed";
            // No grpc-status reached the client: none is recorded.
            r.grpc_status = "";
        }
    }

    fn write(&mut self) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        if let Some(m) = self.upload.take() {
            self.record.bytes_in += m.bytes.load(Ordering::Relaxed);
        }
        self.record.latency_us = self.started.elapsed().as_micros() as u64;
        let stats = self.shared.stats.worker(self.worker);
        stats.count_response(self.record.status);
        if let Some(slot) = self.metrics_slot {
            let upstream_us = self
                .record
                .upstream_addr
                .is_some()
                .then_some(self.record.upstream_latency_us)
                .filter(|&us| us > 0);
            let r = &self.record;
            let metrics = &self.shared.route_metrics;
            metrics.observe(slot, self.worker, r.status, r.latency_us, upstream_us);
        }
        if self.export_span {
            self.push_span();
        }
        if self.python_log {
            self.shared.bridge.tell_log(self.record.clone());
        }
        if self.keep {
            self.shared.records.push(std::mem::take(&mut self.record));
        }
    }
}

impl Drop for CallLog {
    /// The handler (or the body holding the record) was dropped before the call finished.
    fn drop(&mut self) {
        if !self.finished {
            self.mark_ended_early();
            self.write();
        }
    }
}

impl CallLog {
    /// Queue this call's span for the exporter (never waits: a full queue drops it).
    fn push_span(&self) {
        let Some(t) = &self.trace else { return };
        let r = &self.record;
        let start_unix_ns = r.ts_ms.saturating_mul(1_000_000);
        self.shared.spans.push(crate::otlp::FinishedSpan {
            trace_id: t.trace_id,
            span_id: t.span_id,
            parent_span_id: t.parent_span_id,
            flags: t.flags,
            tracestate: t
                .tracestate
                .as_ref()
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            start_unix_ns,
            end_unix_ns: start_unix_ns + r.latency_us.saturating_mul(1_000),
            method: r.method.clone(),
            route: r.route.clone(),
            consumer: r.consumer.clone(),
            status: r.status,
            path: r.path.clone(),
            host: r.host.clone(),
            protocol: r.protocol,
            client_ip: r.client_ip,
            upstream_addr: r.upstream_addr.clone(),
            upstream_ttfb_us: r.upstream_latency_us,
            error_kind: r.error_kind,
        });
    }
}
