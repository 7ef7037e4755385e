//! The end-of-run summary: throughput, outcomes and the latency distribution.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{BenchSpec, ConnOutcome};

#[derive(Debug, Serialize)]
pub struct Report {
    pub url: String,
    pub mode: &'static str,
    pub connections: usize,
    pub threads: usize,
    pub target_rate: Option<f64>,
    pub duration_s: f64,
    pub requests: u64,
    pub requests_per_s: f64,
    pub bytes_read: u64,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Transport failures by kind: connect, timeout, closed, protocol, io.
    pub errors: BTreeMap<&'static str, u64>,
    pub latency_ms: BTreeMap<&'static str, f64>,
}

const QUANTILES: [(&str, f64); 7] = [
    ("p50", 0.50),
    ("p75", 0.75),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99.9", 0.999),
    ("p99.99", 0.9999),
    ("max", 1.0),
];

impl Report {
    pub(super) fn build(
        spec: &BenchSpec,
        measured: Duration,
        outcomes: impl Iterator<Item = ConnOutcome>,
    ) -> Report {
        let mut hist: Histogram<u64> =
            Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds");
        let mut statuses = BTreeMap::new();
        let mut errors = BTreeMap::new();
        let mut bytes_read = 0;
        for o in outcomes {
            hist.add(&o.latency_us).expect("same bounds");
            for (k, v) in o.statuses {
                *statuses.entry(k).or_default() += v;
            }
            for (k, v) in o.errors {
                *errors.entry(k).or_default() += v;
            }
            bytes_read += o.bytes;
        }
        let requests = hist.len();
        let secs = measured.as_secs_f64().max(1e-9);
        let mut latency_ms = BTreeMap::new();
        if requests > 0 {
            latency_ms.insert("min", hist.min() as f64 / 1000.0);
            latency_ms.insert("mean", hist.mean() / 1000.0);
            latency_ms.insert("stdev", hist.stdev() / 1000.0);
            for (name, q) in QUANTILES {
                latency_ms.insert(name, hist.value_at_quantile(q) as f64 / 1000.0);
            }
        }
        Report {
            url: spec.url.clone(),
            mode: if spec.rate.is_some() {
                "open"
            } else {
                "closed"
            },
            connections: spec.connections,
            threads: spec.threads.min(spec.connections),
            target_rate: spec.rate,
            duration_s: secs,
            requests,
            requests_per_s: requests as f64 / secs,
            bytes_read,
            statuses,
            errors,
            latency_ms,
        }
    }
}
