//! The columns of `pygate.requests`: the one place that says which value of a call record
//! goes into which column, with which ClickHouse type.
//!
//! Every view of a record walks `for_each_column` with its own `ColumnSink`: the RowBinary
//! and JSONEachRow encoders (encode.rs), the Native re-encoder's column list
//! (clickhouse_native.rs) and the dict a Python log plugin gets
//! (python/bindings/plugin_call.rs). The sinks are generic
//! parameters, so each encoder is compiled with the walk inlined: no dynamic dispatch and no
//! allocation per field. A test compares the list with `DESCRIBE TABLE pygate.requests` on
//! a freshly migrated store (tests/test_log_columns.py).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use super::CallRecord;

/// One column's value, typed as the column is in ClickHouse.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// DateTime64(3), from milliseconds since the Unix epoch.
    DateTime64Ms(u64),
    String(&'a str),
    LowCardinality(&'a str),
    /// A String holding an address, "" when there is none.
    Ip(Option<IpAddr>),
    UInt16(u16),
    UInt64(u64),
    /// Float32 milliseconds, from microseconds.
    MillisFromMicros(u64),
    Bool(bool),
}

/// How a value is laid out in ClickHouse's binary formats (RowBinary and Native alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// A LEB128 length, then the bytes.
    Str,
    /// A fixed number of little-endian bytes.
    Fixed(usize),
    /// A String in RowBinary; LowCardinality(String) in Native: a dictionary and indexes.
    Dict,
}

impl Value<'_> {
    pub fn clickhouse_type(&self) -> &'static str {
        match self {
            Value::DateTime64Ms(_) => "DateTime64(3)",
            Value::String(_) | Value::Ip(_) => "String",
            Value::LowCardinality(_) => "LowCardinality(String)",
            Value::UInt16(_) => "UInt16",
            Value::UInt64(_) => "UInt64",
            Value::MillisFromMicros(_) => "Float32",
            Value::Bool(_) => "Bool",
        }
    }

    pub fn layout(&self) -> Layout {
        match self {
            Value::DateTime64Ms(_) | Value::UInt64(_) => Layout::Fixed(8),
            Value::String(_) | Value::Ip(_) => Layout::Str,
            Value::LowCardinality(_) => Layout::Dict,
            Value::UInt16(_) => Layout::Fixed(2),
            Value::MillisFromMicros(_) => Layout::Fixed(4),
            Value::Bool(_) => Layout::Fixed(1),
        }
    }
}

/// Receives a record's columns in table order.
pub trait ColumnSink {
    fn column(&mut self, name: &'static str, value: Value<'_>);
}

fn or_empty(value: &Option<Arc<str>>) -> &str {
    value.as_deref().unwrap_or("")
}

/// `pygate.requests`, column by column, in table order. Adding a column here (and in a
/// migration) is all the core needs: every encoder and view follows.
#[inline(always)]
pub fn for_each_column<S: ColumnSink>(r: &CallRecord, sink: &mut S) {
    sink.column("ts", Value::DateTime64Ms(r.ts_ms));
    sink.column("request_id", Value::String(&r.request_id));
    sink.column("route", Value::LowCardinality(or_empty(&r.route)));
    sink.column("consumer", Value::LowCardinality(or_empty(&r.consumer)));
    let method = r.method.as_ref().map_or("", |m| m.as_str());
    sink.column("method", Value::LowCardinality(method));
    sink.column("protocol", Value::LowCardinality(r.protocol));
    sink.column("host", Value::LowCardinality(&r.host));
    sink.column("path", Value::String(&r.path));
    sink.column("status", Value::UInt16(r.status));
    sink.column("latency_ms", Value::MillisFromMicros(r.latency_us));
    let upstream_latency = Value::MillisFromMicros(r.upstream_latency_us);
    sink.column("upstream_latency_ms", upstream_latency);
    sink.column("bytes_in", Value::UInt64(r.bytes_in));
    sink.column("bytes_out", Value::UInt64(r.bytes_out));
    sink.column("client_ip", Value::Ip(r.client_ip));
    let upstream_addr = Value::LowCardinality(or_empty(&r.upstream_addr));
    sink.column("upstream_addr", upstream_addr);
    sink.column("error_kind", Value::LowCardinality(r.error_kind));
    sink.column("grpc_status", Value::LowCardinality(r.grpc_status));
    sink.column("rate_limited", Value::Bool(r.rate_limited));
    sink.column("tls_version", Value::LowCardinality(r.tls_version));
    sink.column("tls_sni", Value::LowCardinality(or_empty(&r.tls_sni)));
    sink.column("tls_alpn", Value::LowCardinality(r.tls_alpn));
    sink.column("ws_close_code", Value::UInt16(r.ws_close_code));
    sink.column("ws_frames_in", Value::UInt64(r.ws_frames_in));
    sink.column("ws_frames_out", Value::UInt64(r.ws_frames_out));
}

/// A column of `pygate.requests` as a table definition sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    pub name: &'static str,
    pub clickhouse_type: &'static str,
    pub layout: Layout,
}

struct ColumnList(Vec<Column>);

impl ColumnSink for ColumnList {
    fn column(&mut self, name: &'static str, value: Value<'_>) {
        self.0.push(Column {
            name,
            clickhouse_type: value.clickhouse_type(),
            layout: value.layout(),
        });
    }
}

/// The columns of `pygate.requests` in table order (computed once).
pub fn columns() -> &'static [Column] {
    static COLUMNS: OnceLock<Vec<Column>> = OnceLock::new();
    COLUMNS.get_or_init(|| {
        let mut list = ColumnList(Vec::new());
        for_each_column(&CallRecord::default(), &mut list);
        list.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_in_table_order() {
        let names: Vec<&str> = columns().iter().map(|c| c.name).collect();
        assert_eq!(names.first(), Some(&"ts"));
        assert_eq!(names.last(), Some(&"ws_frames_out"));
        let mut unique = names.clone();
        unique.sort_unstable();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
    }
}
