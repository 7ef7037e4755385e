//! The log phase: the call record under construction travels with the response body
//! (body/response.rs) and is finished once, when the client has the last byte or went away.

use std::sync::Arc;
use std::time::Instant;

use super::CallRecord;
use crate::state::Shared;

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
        }
    }

    /// This worker's live counters.
    pub fn stats(&self) -> &crate::stats::WorkerStats {
        self.shared.stats.worker(self.worker)
    }

    /// The log phase: count the response, observe the route's latency, hand Python `log`
    /// plugins their copy and keep the record.
    pub(crate) fn finish(mut self) {
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
            self.shared.records.push(self.record);
        }
    }

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
