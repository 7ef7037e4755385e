//! A call record as one RowBinary or JSONEachRow row of `pygate.requests` (columns.rs says
//! which columns, in which order). Runs once per request on the drain: no allocation.

use std::io::Write;
use std::net::IpAddr;

use super::columns::{for_each_column, ColumnSink, Value};
use super::CallRecord;

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

fn millis(micros: u64) -> f64 {
    micros as f64 / 1000.0
}

/// An address as text, written in place (as `to_string` would give it; text.rs: an IPv4
/// address without core::fmt, once per record on the drain).
fn put_ip_text(out: &mut Vec<u8>, ip: IpAddr) {
    crate::text::put_ip(out, ip);
}

struct RowBinary<'o>(&'o mut Vec<u8>);

impl ColumnSink for RowBinary<'_> {
    #[inline(always)]
    fn column(&mut self, _name: &'static str, value: Value<'_>) {
        let out = &mut *self.0;
        match value {
            Value::DateTime64Ms(ms) => out.extend_from_slice(&(ms as i64).to_le_bytes()),
            Value::String(s) | Value::LowCardinality(s) => put_string(out, s.as_bytes()),
            Value::Ip(None) => out.push(0),
            Value::Ip(Some(ip)) => {
                // An address is at most 45 characters: its length is one LEB128 byte.
                out.push(0);
                let start = out.len();
                put_ip_text(out, ip);
                debug_assert!(out.len() - start < 0x80);
                out[start - 1] = (out.len() - start) as u8;
            }
            Value::UInt16(n) => out.extend_from_slice(&n.to_le_bytes()),
            Value::UInt64(n) => out.extend_from_slice(&n.to_le_bytes()),
            Value::MillisFromMicros(us) => {
                out.extend_from_slice(&(millis(us) as f32).to_le_bytes())
            }
            Value::Bool(b) => out.push(u8::from(b)),
        }
    }
}

/// One row in the column order of `pygate.requests`, in ClickHouse's RowBinary format.
pub fn encode_row_binary(r: &CallRecord, out: &mut Vec<u8>) {
    for_each_column(r, &mut RowBinary(out));
}

fn json_str(out: &mut Vec<u8>, s: &str) {
    serde_json::to_writer(&mut *out, s).expect("writing to a Vec cannot fail");
}

/// Writes `,"name":value` per column; the row's first comma becomes its `{`.
struct JsonRow<'o>(&'o mut Vec<u8>);

impl ColumnSink for JsonRow<'_> {
    #[inline(always)]
    fn column(&mut self, name: &'static str, value: Value<'_>) {
        let out = &mut *self.0;
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":");
        match value {
            // Seconds with a millisecond fraction: ClickHouse reads that as DateTime64(3),
            // whereas a bare integer would be taken as seconds.
            Value::DateTime64Ms(ms) => {
                let _ = write!(out, "{}.{:03}", ms / 1000, ms % 1000);
            }
            Value::String(s) | Value::LowCardinality(s) => json_str(out, s),
            Value::Ip(None) => out.extend_from_slice(b"\"\""),
            Value::Ip(Some(ip)) => {
                // Address text needs no JSON escaping.
                out.push(b'"');
                put_ip_text(out, ip);
                out.push(b'"');
            }
            Value::UInt16(n) => {
                let _ = write!(out, "{n}");
            }
            Value::UInt64(n) => {
                let _ = write!(out, "{n}");
            }
            Value::MillisFromMicros(us) => {
                let _ = write!(out, "{:.3}", millis(us));
            }
            Value::Bool(b) => out.extend_from_slice(if b { &b"true"[..] } else { &b"false"[..] }),
        }
    }
}

/// One JSONEachRow line, keys in the column order of `pygate.requests`.
pub fn encode_json_row(r: &CallRecord, out: &mut Vec<u8>) {
    let start = out.len();
    for_each_column(r, &mut JsonRow(out));
    out[start] = b'{';
    out.extend_from_slice(b"}\n");
}

#[cfg(test)]
mod tests {
    use super::super::columns::{columns, Layout};
    use super::super::fixture::record;
    use super::*;

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
    fn json_keys_are_the_columns_in_order() {
        let mut out = Vec::new();
        encode_json_row(&record("r1"), &mut out);
        let mut rest = std::str::from_utf8(&out).unwrap();
        for c in columns() {
            let key = format!("\"{}\":", c.name);
            let at = rest
                .find(&key)
                .unwrap_or_else(|| panic!("{} missing or out of order", c.name));
            rest = &rest[at + key.len()..];
        }
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v.as_object().unwrap().len(), columns().len());
    }

    #[test]
    fn json_of_a_record_without_optional_values() {
        let mut out = Vec::new();
        encode_json_row(&CallRecord::default(), &mut out);
        assert!(out.starts_with(b"{\"ts\":0.000,"));
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["client_ip"], "");
        assert_eq!(v["method"], "");
    }

    #[test]
    fn row_binary_layout() {
        let mut out = Vec::new();
        encode_row_binary(&record("r1"), &mut out);
        assert_eq!(&out[..8], &1_764_000_000_123i64.to_le_bytes());
        assert_eq!(&out[8..11], b"\x02r1");
        let long = "x".repeat(300);
        let mut buf = Vec::new();
        put_string(&mut buf, long.as_bytes());
        assert_eq!(&buf[..2], &[0xac, 0x02]); // 300 as LEB128
        assert_eq!(buf.len(), 302);
        let values = split_row(&out);
        let i = columns().iter().position(|c| c.name == "rate_limited");
        assert_eq!(values[i.unwrap()], [0]); // rate_limited = false
    }

    /// Walks a RowBinary row by the column table's layouts; returns each value's bytes.
    fn split_row(row: &[u8]) -> Vec<&[u8]> {
        let mut pos = 0;
        let mut values = Vec::new();
        for c in columns() {
            let len = match c.layout {
                Layout::Fixed(n) => n,
                Layout::Str | Layout::Dict => 1 + row[pos] as usize, // short test values
            };
            values.push(&row[pos..pos + len]);
            pos += len;
        }
        assert_eq!(pos, row.len(), "the row is exactly the table's columns");
        values
    }

    #[test]
    fn row_binary_values_follow_the_column_table() {
        let mut out = Vec::new();
        encode_row_binary(&record("r1"), &mut out);
        let values = split_row(&out);
        let by_name = |name: &str| {
            let i = columns().iter().position(|c| c.name == name).unwrap();
            values[i]
        };
        assert_eq!(by_name("client_ip"), b"\x09127.0.0.1");
        assert_eq!(by_name("upstream_addr"), b"\x0e127.0.0.1:9001");
        assert_eq!(by_name("latency_ms"), 1.5f32.to_le_bytes());
        assert_eq!(by_name("status"), 200u16.to_le_bytes());
        let v6 = CallRecord {
            client_ip: Some("2001:db8::1".parse().unwrap()),
            ..CallRecord::default()
        };
        let mut out = Vec::new();
        encode_row_binary(&v6, &mut out);
        let values = split_row(&out);
        let i = columns()
            .iter()
            .position(|c| c.name == "client_ip")
            .unwrap();
        assert_eq!(values[i], b"\x0b2001:db8::1");
    }
}
