//! Call records: one per request, held in a bounded lock-free buffer until Python drains them.
//!
//! The buffer never blocks traffic: when it is full a new record is dropped and counted.
//! Draining encodes a batch straight to RowBinary or JSONEachRow bytes (records/encode.rs, by
//! the column table in records/columns.rs) so Python builds no object per row;
//! records/clickhouse_native.rs re-encodes a RowBinary batch into one ClickHouse Native block
//! for chDB. A record is built as a `CallLog` (records/call_log.rs) while its call runs.

mod call_log;
pub mod clickhouse_native;
pub mod columns;
mod encode;

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

pub use call_log::{cut_by_shutdown, worker_stopped, CallLog, CLIENT_CLOSED};
pub use encode::{encode_json_row, encode_row_binary, put_string, put_varuint};

/// One request's record; `columns::for_each_column` maps it to the columns of
/// `pygate.requests`.
#[derive(Debug, Clone, Default)]
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
    /// A gRPC call's `grpc-status` ("0".."16"); empty for other calls, or when the call
    /// ended without one.
    pub grpc_status: &'static str,
    pub rate_limited: bool,
    /// "HTTP/1.1", "HTTP/2"...; empty when no request head was read (conn_io.rs).
    pub protocol: &'static str,
    /// "TLSv1.3" / "TLSv1.2"; empty on a plain connection. The SNI name and ALPN protocol
    /// the TLS client asked for and got.
    pub tls_version: &'static str,
    pub tls_sni: Option<Arc<str>>,
    pub tls_alpn: &'static str,
    /// A WebSocket's first Close code (1006: it ended without one); 0 for other calls.
    pub ws_close_code: u16,
    /// WebSocket frames client to upstream, and upstream to client.
    pub ws_frames_in: u64,
    pub ws_frames_out: u64,
}

impl CallRecord {
    /// A record begun now for a client at `client_ip` on a connection that negotiated `tls`
    /// (None: plain); every other field starts empty.
    pub fn begin(
        request_id: String,
        client_ip: IpAddr,
        tls: Option<&crate::tls::TlsInfo>,
    ) -> CallRecord {
        let mut record = CallRecord {
            ts_ms: crate::clock::unix_ms(),
            request_id,
            client_ip: Some(client_ip.to_canonical()),
            ..CallRecord::default()
        };
        if let Some(tls) = tls {
            record.tls_version = tls.version;
            record.tls_sni = tls.sni.clone();
            record.tls_alpn = tls.alpn;
        }
        record
    }
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

/// One record with every kind of value (quotes in the path, an empty consumer), shared by
/// the encoders' tests.
#[cfg(test)]
pub(crate) mod fixture {
    use std::sync::Arc;

    use super::CallRecord;

    pub fn record(id: &str) -> CallRecord {
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
            grpc_status: "",
            rate_limited: false,
            protocol: "HTTP/1.1",
            tls_version: "TLSv1.3",
            tls_sni: Some(Arc::from("example.com")),
            tls_alpn: "http/1.1",
            ws_close_code: 1000,
            ws_frames_in: 3,
            ws_frames_out: 4,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixture::record;
    use super::*;

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
}
