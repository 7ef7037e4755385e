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

    /// Pop up to `max` records and encode them in `format` into `batch` (emptied first).
    /// Also records where each row ends in the bytes, so a batch the store refuses can be
    /// split without decoding it. The caller keeps `batch` for the next drain: a batch is
    /// megabytes, and fresh memory for each one would cost a page fault per 4 KiB.
    pub fn drain_into(&self, max: usize, format: RecordFormat, batch: &mut DrainedBatch) {
        batch.count = 0;
        batch.data.clear();
        batch.row_ends.clear();
        while batch.count < max {
            let Some(rec) = self.queue.pop() else { break };
            match format {
                RecordFormat::JsonEachRow => encode_json_row(&rec, &mut batch.data),
                RecordFormat::RowBinary => encode_row_binary(&rec, &mut batch.data),
            }
            batch.row_ends.push(batch.data.len() as u32);
            batch.count += 1;
        }
    }

    pub fn drain(&self, max: usize, format: RecordFormat) -> DrainedBatch {
        let mut batch = DrainedBatch::default();
        self.drain_into(max, format, &mut batch);
        batch
    }
}

/// ClickHouse input formats the buffer can produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordFormat {
    JsonEachRow,
    RowBinary,
}

impl RecordFormat {
    pub fn parse(name: &str) -> Option<RecordFormat> {
        match name.to_ascii_lowercase().as_str() {
            "jsoneachrow" => Some(RecordFormat::JsonEachRow),
            "rowbinary" => Some(RecordFormat::RowBinary),
            _ => None,
        }
    }
}

#[derive(Default)]
pub struct DrainedBatch {
    pub count: usize,
    pub data: Vec<u8>,
    /// Byte offset just past each row.
    pub row_ends: Vec<u32>,
}

/// ClickHouse's variable-length unsigned integer (LEB128), as its binary formats use for
/// string lengths and counts.
pub fn put_varuint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// A String value: its length, then its bytes.
pub fn put_string(out: &mut Vec<u8>, s: &[u8]) {
    put_varuint(out, s.len() as u64);
    out.extend_from_slice(s);
}

fn rb_string(out: &mut Vec<u8>, s: &str) {
    put_string(out, s.as_bytes());
}

/// One row in the column order of `pygate.requests`, in ClickHouse's RowBinary format.
pub fn encode_row_binary(r: &CallRecord, out: &mut Vec<u8>) {
    out.extend_from_slice(&(r.ts_ms as i64).to_le_bytes()); // DateTime64(3): ms ticks
    rb_string(out, &r.request_id);
    rb_string(out, r.route.as_deref().unwrap_or(""));
    rb_string(out, r.consumer.as_deref().unwrap_or(""));
    rb_string(out, r.method.as_ref().map_or("", |m| m.as_str()));
    rb_string(out, &r.host);
    rb_string(out, &r.path);
    out.extend_from_slice(&r.status.to_le_bytes());
    out.extend_from_slice(&((r.latency_us as f64 / 1000.0) as f32).to_le_bytes());
    out.extend_from_slice(&((r.upstream_latency_us as f64 / 1000.0) as f32).to_le_bytes());
    out.extend_from_slice(&r.bytes_in.to_le_bytes());
    out.extend_from_slice(&r.bytes_out.to_le_bytes());
    match r.client_ip {
        Some(ip) => rb_string(out, &ip.to_string()),
        None => rb_string(out, ""),
    }
    rb_string(out, r.upstream_addr.as_deref().unwrap_or(""));
    rb_string(out, r.error_kind);
    out.push(u8::from(r.rate_limited));
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
        let batch = b.drain(10, RecordFormat::JsonEachRow);
        assert_eq!(batch.count, 2);
        assert_eq!(batch.data.iter().filter(|&&c| c == b'\n').count(), 2);
        assert_eq!(*batch.row_ends.last().unwrap() as usize, batch.data.len());
        assert_eq!(b.pending(), 0);
    }

    #[test]
    fn row_binary_layout() {
        let mut out = Vec::new();
        encode_row_binary(&record("r1"), &mut out);
        assert_eq!(&out[..8], &1_764_000_000_123i64.to_le_bytes());
        assert_eq!(&out[8..11], b"\x02r1");
        let long = "x".repeat(300);
        let mut buf = Vec::new();
        rb_string(&mut buf, &long);
        assert_eq!(&buf[..2], &[0xac, 0x02]); // 300 as LEB128
        assert_eq!(buf.len(), 302);
        assert_eq!(*out.last().unwrap(), 0); // rate_limited = false
    }
}
