//! Call records: one per request, held in a bounded lock-free buffer until Python drains them.
//!
//! The buffer never blocks traffic: when it is full a new record is dropped and counted.
//! Draining encodes a batch straight to JSONEachRow bytes so Python builds no object per row.

use std::io::Write;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

#[derive(Debug, Clone)]
pub struct CallRecord {
    /// Wall-clock start of the request, milliseconds since the Unix epoch.
    pub ts_ms: u64,
    pub request_id: String,
    pub route: Option<Arc<str>>,
    pub consumer: Option<Arc<str>>,
    /// None when the request line could not be parsed.
    pub method: Option<http::Method>,
    pub host: String,
    pub path: String,
    pub status: u16,
    pub latency_us: u64,
    pub upstream_latency_us: u64,
    /// Request line, headers and body as received.
    pub bytes_in: u64,
    /// Response body bytes sent to the client.
    pub bytes_out: u64,
    pub client_ip: Option<IpAddr>,
    pub upstream_addr: Option<Arc<str>>,
    /// Empty when the call succeeded; otherwise a stable snake_case kind (see errors.rs).
    pub error_kind: &'static str,
    pub rate_limited: bool,
}

pub struct RecordBuffer {
    queue: ArrayQueue<CallRecord>,
    dropped: AtomicU64,
}

impl RecordBuffer {
    pub fn new(capacity: usize) -> RecordBuffer {
        RecordBuffer {
            queue: ArrayQueue::new(capacity.max(1)),
            dropped: AtomicU64::new(0),
        }
    }

    pub fn push(&self, record: CallRecord) {
        if self.queue.push(record).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn pending(&self) -> usize {
        self.queue.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Pop up to `max` records and encode them as JSONEachRow.
    pub fn drain_json(&self, max: usize) -> (usize, Vec<u8>) {
        let mut out = Vec::with_capacity(max.min(self.pending()) * 320);
        let mut n = 0;
        while n < max {
            let Some(rec) = self.queue.pop() else { break };
            encode_json_row(&rec, &mut out);
            n += 1;
        }
        (n, out)
    }
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Keys in the column order of `pygate.requests`.
pub fn encode_json_row(r: &CallRecord, out: &mut Vec<u8>) {
    let opt = |v: &Option<Arc<str>>| v.as_deref().unwrap_or("").to_owned();
    // `ts` is seconds with a millisecond fraction: ClickHouse reads that as DateTime64(3),
    // whereas a bare integer would be taken as seconds.
    let _ = write!(
        out,
        "{{\"ts\":{}.{:03},\"request_id\":",
        r.ts_ms / 1000,
        r.ts_ms % 1000
    );
    json_str(out, &r.request_id);
    out.extend_from_slice(b",\"route\":");
    json_str(out, &opt(&r.route));
    out.extend_from_slice(b",\"consumer\":");
    json_str(out, &opt(&r.consumer));
    out.extend_from_slice(b",\"method\":");
    json_str(out, r.method.as_ref().map_or("", |m| m.as_str()));
    out.extend_from_slice(b",\"host\":");
    json_str(out, &r.host);
    out.extend_from_slice(b",\"path\":");
    json_str(out, &r.path);
    let _ = write!(
        out,
        ",\"status\":{},\"latency_ms\":{:.3},\"upstream_latency_ms\":{:.3},\"bytes_in\":{},\"bytes_out\":{},\"client_ip\":",
        r.status,
        r.latency_us as f64 / 1000.0,
        r.upstream_latency_us as f64 / 1000.0,
        r.bytes_in,
        r.bytes_out
    );
    json_str(
        out,
        &r.client_ip.map(|ip| ip.to_string()).unwrap_or_default(),
    );
    out.extend_from_slice(b",\"upstream_addr\":");
    json_str(out, &opt(&r.upstream_addr));
    out.extend_from_slice(b",\"error_kind\":");
    json_str(out, r.error_kind);
    let _ = writeln!(out, ",\"rate_limited\":{}}}", r.rate_limited);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str) -> CallRecord {
        CallRecord {
            ts_ms: 1_764_000_000_123,
            request_id: id.into(),
            route: Some(Arc::from("items")),
            consumer: None,
            method: Some(http::Method::GET),
            host: "example.com".into(),
            path: "/a\"b".into(),
            status: 200,
            latency_us: 1500,
            upstream_latency_us: 1000,
            bytes_in: 78,
            bytes_out: 12,
            client_ip: Some("127.0.0.1".parse().unwrap()),
            upstream_addr: Some(Arc::from("127.0.0.1:9001")),
            error_kind: "",
            rate_limited: false,
        }
    }

    #[test]
    fn encodes_valid_json_with_escaping() {
        let mut out = Vec::new();
        encode_json_row(&record("r1"), &mut out);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["ts"].to_string(), "1764000000.123");
        assert_eq!(v["path"], "/a\"b");
        assert_eq!(v["latency_ms"].as_f64(), Some(1.5));
        assert_eq!(v["consumer"], "");
        assert_eq!(v["rate_limited"], false);
        assert!(out.ends_with(b"\n"));
    }

    #[test]
    fn full_buffer_drops_and_counts() {
        let b = RecordBuffer::new(2);
        for i in 0..5 {
            b.push(record(&format!("r{i}")));
        }
        assert_eq!(b.pending(), 2);
        assert_eq!(b.dropped(), 3);
        let (n, bytes) = b.drain_json(10);
        assert_eq!(n, 2);
        assert_eq!(bytes.iter().filter(|&&c| c == b'\n').count(), 2);
        assert_eq!(b.pending(), 0);
    }
}
