//! Spans of finished calls, exported over OTLP (HTTP/protobuf or gRPC) off the hot path.
//!
//! A sampled call's span is built when its record is finished (records/call_log.rs) and
//! pushed on a bounded lock-free queue; when the queue is full the span is dropped and
//! counted (`tracing_spans_dropped_total`), so a slow or dead collector never slows a
//! request. The exporter thread (export.rs) drains it in batches.
//!
//! Sampling (`sample`): a caller's sampled flag is followed when `parent_based` (the
//! default); otherwise, and for new traces, `sample_ratio` decides.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_queue::ArrayQueue;
use serde::Deserialize;

pub mod encode;
pub mod export;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TracingConfig {
    /// None: traces are propagated but no span is exported.
    #[serde(default)]
    pub otlp: Option<OtlpConfig>,
    #[serde(default = "one")]
    pub sample_ratio: f64,
    #[serde(default = "yes")]
    pub parent_based: bool,
    /// Answer with the gateway's `traceparent` to the client too.
    #[serde(default)]
    pub response_header: bool,
    #[serde(default = "default_service")]
    pub service_name: String,
}

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OtlpConfig {
    /// `http://host:port[/path]`; the HTTP protocol posts to /v1/traces when no path.
    pub endpoint: String,
    pub protocol: Protocol,
    /// Sent with every export (auth tokens): never logged nor shown.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    #[serde(default = "default_interval")]
    pub flush_interval_ms: u64,
}

// The headers are secrets: Debug shows their names only.
impl std::fmt::Debug for OtlpConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("OtlpConfig")
            .field("endpoint", &self.endpoint)
            .field("protocol", &self.protocol)
            .field("header_names", &names)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Http,
    Grpc,
}

fn one() -> f64 {
    1.0
}
fn yes() -> bool {
    true
}
fn default_service() -> String {
    "pygate".into()
}
fn default_timeout() -> u64 {
    10_000
}
fn default_batch() -> usize {
    512
}
fn default_interval() -> u64 {
    1_000
}

impl TracingConfig {
    /// Whether a call is recorded: a caller's flag (`parent`) when parent-based.
    pub fn sample(&self, parent: Option<bool>) -> bool {
        match parent {
            Some(sampled) if self.parent_based => sampled,
            _ => self.sample_ratio >= 1.0 || fastrand::f64() < self.sample_ratio,
        }
    }

    /// Said at load, with the field's path (the Python schema checks first; this guards
    /// hand-written core configs).
    pub fn check(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        if !(0.0..=1.0).contains(&self.sample_ratio) {
            return Err(ConfigError::new(
                "tracing.sample_ratio",
                format!("expected a number from 0 to 1, got {}", self.sample_ratio),
            ));
        }
        let Some(otlp) = &self.otlp else {
            return Ok(());
        };
        let uri: Option<http::Uri> = otlp.endpoint.parse().ok();
        let usable = uri.as_ref().is_some_and(|u| {
            u.scheme_str() == Some("http") && u.host().is_some_and(|h| !h.is_empty())
        });
        if !usable {
            return Err(ConfigError::new(
                "tracing.otlp.endpoint",
                format!("expected http://HOST:PORT[/PATH], got {:?}", otlp.endpoint),
            ));
        }
        for (i, (name, value)) in otlp.headers.iter().enumerate() {
            let ok = http::HeaderName::from_bytes(name.as_bytes()).is_ok()
                && http::HeaderValue::from_str(value).is_ok();
            if !ok {
                // The value is a secret: the message names the header only.
                return Err(ConfigError::new(
                    format!("tracing.otlp.headers[{i}]"),
                    format!("header {name:?} is not a valid HTTP header name and value"),
                ));
            }
        }
        if otlp.timeout_ms == 0 || otlp.batch_size == 0 || otlp.flush_interval_ms == 0 {
            return Err(ConfigError::new(
                "tracing.otlp",
                "timeout, batch_size and flush_interval must be positive",
            ));
        }
        Ok(())
    }

    pub fn exports(&self) -> bool {
        self.otlp.is_some()
    }
}

/// One finished call, as the span says it.
#[derive(Debug, Clone)]
pub struct FinishedSpan {
    pub trace_id: u128,
    pub span_id: u64,
    pub parent_span_id: Option<u64>,
    pub flags: u8,
    pub tracestate: Option<String>,
    pub start_unix_ns: u64,
    pub end_unix_ns: u64,
    pub method: Option<http::Method>,
    pub route: Option<std::sync::Arc<str>>,
    pub consumer: Option<std::sync::Arc<str>>,
    pub status: u16,
    pub path: String,
    pub host: String,
    pub protocol: &'static str,
    pub client_ip: Option<std::net::IpAddr>,
    pub upstream_addr: Option<std::sync::Arc<str>>,
    pub upstream_ttfb_us: u64,
    pub error_kind: &'static str,
}

/// The bounded queue between the workers and the exporter, for the life of the process.
pub struct SpanQueue {
    queue: ArrayQueue<FinishedSpan>,
    pub dropped: AtomicU64,
    pub exported: AtomicU64,
    pub export_failures: AtomicU64,
}

pub const QUEUE_CAPACITY: usize = 8192;

impl Default for SpanQueue {
    fn default() -> Self {
        SpanQueue::new(QUEUE_CAPACITY)
    }
}

impl SpanQueue {
    pub fn new(capacity: usize) -> SpanQueue {
        SpanQueue {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
            exported: AtomicU64::new(0),
            export_failures: AtomicU64::new(0),
        }
    }

    /// Never waits: a full queue drops the span and counts it.
    pub fn push(&self, span: FinishedSpan) {
        if self.queue.push(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn pop_batch(&self, max: usize, into: &mut Vec<FinishedSpan>) {
        while into.len() < max {
            match self.queue.pop() {
                Some(s) => into.push(s),
                None => break,
            }
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// (name, value) pairs for /status and /metrics.
    pub fn snapshot(&self) -> [(&'static str, u64); 3] {
        [
            (
                "tracing_spans_exported_total",
                self.exported.load(Ordering::Relaxed),
            ),
            (
                "tracing_spans_dropped_total",
                self.dropped.load(Ordering::Relaxed),
            ),
            (
                "tracing_export_failures_total",
                self.export_failures.load(Ordering::Relaxed),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(ratio: f64, parent_based: bool) -> TracingConfig {
        TracingConfig {
            otlp: None,
            sample_ratio: ratio,
            parent_based,
            response_header: false,
            service_name: "t".into(),
        }
    }

    #[test]
    fn sampling_follows_the_parent_or_the_ratio() {
        assert!(config(0.0, true).sample(Some(true)));
        assert!(!config(1.0, true).sample(Some(false)));
        assert!(!config(0.0, false).sample(Some(true)));
        assert!(config(1.0, false).sample(None));
        assert!(!config(0.0, true).sample(None));
        let half = config(0.5, true);
        let n = (0..10_000).filter(|_| half.sample(None)).count();
        assert!((4_000..6_000).contains(&n), "{n}");
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let q = SpanQueue::new(2);
        let span = FinishedSpan {
            trace_id: 1,
            span_id: 1,
            parent_span_id: None,
            flags: 1,
            tracestate: None,
            start_unix_ns: 0,
            end_unix_ns: 0,
            method: None,
            route: None,
            consumer: None,
            status: 200,
            path: String::new(),
            host: String::new(),
            protocol: "",
            client_ip: None,
            upstream_addr: None,
            upstream_ttfb_us: 0,
            error_kind: "",
        };
        for _ in 0..5 {
            q.push(span.clone());
        }
        assert_eq!(q.len(), 2);
        assert_eq!(q.dropped.load(Ordering::Relaxed), 3);
        let mut out = Vec::new();
        q.pop_batch(10, &mut out);
        assert_eq!(out.len(), 2);
        let debug = format!(
            "{:?}",
            OtlpConfig {
                endpoint: "http://x".into(),
                protocol: Protocol::Http,
                headers: vec![("authorization".into(), "Bearer s3cret".into())],
                timeout_ms: 1,
                batch_size: 1,
                flush_interval_ms: 1,
            }
        );
        assert!(!debug.contains("s3cret"), "{debug}");
    }
}
