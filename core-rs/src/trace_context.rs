//! W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` and
//! `tracestate` a caller sent are continued, with the gateway's own span as the parent the
//! upstream sees; a missing or malformed `traceparent` starts a new trace.
//!
//! Parsing follows the spec's rules for a receiver: version `ff` is invalid; version `00`
//! is exactly 55 characters; a later version is at least 55, and if longer the 56th
//! character is `-` (its extra fields are ignored, and we answer in version 00); every
//! field is lowercase hex of its exact length; an all-zero trace id or parent id is invalid.
//! More than one `traceparent` header is treated as malformed. `tracestate` is passed on
//! only with a valid `traceparent` (the spec forbids reading it otherwise), its several
//! header lines joined, and dropped if it is longer than the spec's 512 characters.

use http::{HeaderMap, HeaderName, HeaderValue};

pub const TRACEPARENT: &str = "traceparent";
pub const TRACESTATE: &str = "tracestate";
// As names, so that writing them per request does not parse the text again.
pub const TRACEPARENT_NAME: HeaderName = HeaderName::from_static(TRACEPARENT);
const TRACESTATE_NAME: HeaderName = HeaderName::from_static(TRACESTATE);
const MAX_TRACESTATE: usize = 512;
const SAMPLED: u8 = 0x01;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    pub trace_id: u128,
    /// The gateway's span for this call: the parent the upstream is told of.
    pub span_id: u64,
    /// The caller's span, when it sent a valid `traceparent`.
    pub parent_span_id: Option<u64>,
    /// The caller's flags (or ours for a new trace); bit 0 is "sampled".
    pub flags: u8,
    pub tracestate: Option<HeaderValue>,
}

/// The parts of a valid `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parent {
    pub trace_id: u128,
    pub span_id: u64,
    pub flags: u8,
}

impl TraceContext {
    /// Continue the caller's trace, or start one (`sample_new`: the sampling decision for a
    /// new trace's flag).
    pub fn from_headers(headers: &HeaderMap, sample_new: impl FnOnce() -> bool) -> TraceContext {
        let span_id = new_span_id();
        let mut values = headers.get_all(TRACEPARENT).iter();
        let parent = match (values.next(), values.next()) {
            (Some(v), None) => parse_traceparent(v.as_bytes()),
            _ => None,
        };
        match parent {
            Some(p) => TraceContext {
                trace_id: p.trace_id,
                span_id,
                parent_span_id: Some(p.span_id),
                flags: p.flags,
                tracestate: joined_tracestate(headers),
            },
            None => TraceContext {
                trace_id: new_trace_id(),
                span_id,
                parent_span_id: None,
                flags: if sample_new() { SAMPLED } else { 0 },
                tracestate: None,
            },
        }
    }

    pub fn sampled(&self) -> bool {
        self.flags & SAMPLED != 0
    }

    pub fn set_sampled(&mut self, sampled: bool) {
        self.flags = (self.flags & !SAMPLED) | if sampled { SAMPLED } else { 0 };
    }

    /// The `traceparent` the upstream gets: this trace, the gateway's span as parent.
    /// Every proxied call sends one, traced or not, so it is written into a stack buffer
    /// by hand (no `format!` machinery, no intermediate String).
    pub fn traceparent(&self) -> HeaderValue {
        let mut buf = *b"00-00000000000000000000000000000000-0000000000000000-00";
        write_hex(&mut buf[3..35], self.trace_id);
        write_hex(&mut buf[36..52], u128::from(self.span_id));
        write_hex(&mut buf[53..55], u128::from(self.flags));
        // Hex digits and dashes only.
        HeaderValue::from_bytes(&buf).expect("traceparent is visible ASCII")
    }

    /// Replace whatever the client sent with this hop's headers.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        headers.insert(TRACEPARENT_NAME, self.traceparent());
        match &self.tracestate {
            Some(state) => {
                headers.insert(TRACESTATE_NAME, state.clone());
            }
            None => {
                headers.remove(TRACESTATE_NAME);
            }
        }
    }

    pub fn trace_id_hex(&self) -> String {
        format!("{:032x}", self.trace_id)
    }

    pub fn span_id_hex(&self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// A valid `traceparent` value, or None by the spec's rules (module comment).
pub fn parse_traceparent(value: &[u8]) -> Option<Parent> {
    if value.len() < 55 {
        return None;
    }
    let version = hex_field(&value[0..2])? as u8;
    if version == 0xff {
        return None;
    }
    if version == 0 && value.len() != 55 {
        return None;
    }
    if value.len() > 55 && value[55] != b'-' {
        return None;
    }
    if value[2] != b'-' || value[35] != b'-' || value[52] != b'-' {
        return None;
    }
    let trace_id = hex_field(&value[3..35])?;
    let span_id = hex_field(&value[36..52])? as u64;
    let flags = hex_field(&value[53..55])? as u8;
    if trace_id == 0 || span_id == 0 {
        return None;
    }
    Some(Parent {
        trace_id,
        span_id,
        flags,
    })
}

/// Lowercase hex only (the spec's HEXDIGLC); at most 32 digits.
fn hex_field(digits: &[u8]) -> Option<u128> {
    let mut n: u128 = 0;
    for &d in digits {
        let v = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            _ => return None,
        };
        n = (n << 4) | u128::from(v);
    }
    Some(n)
}

/// Lowercase hex of the low `out.len() * 4` bits of `n`, most significant digit first.
fn write_hex(out: &mut [u8], mut n: u128) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for d in out.iter_mut().rev() {
        *d = DIGITS[(n & 0xf) as usize];
        n >>= 4;
    }
}

fn joined_tracestate(headers: &HeaderMap) -> Option<HeaderValue> {
    let mut values = headers.get_all(TRACESTATE).iter();
    let first = values.next()?;
    // The usual case, one line without surrounding blanks, is passed on as received
    // (a shared buffer, no copy).
    let all = headers.get_all(TRACESTATE);
    let single = all.iter().nth(1).is_none();
    let bytes = first.as_bytes();
    let blank = |b: Option<&u8>| b.is_some_and(u8::is_ascii_whitespace);
    if single && !blank(bytes.first()) && !blank(bytes.last()) && first.to_str().is_ok() {
        return (!bytes.is_empty() && bytes.len() <= MAX_TRACESTATE).then(|| first.clone());
    }
    let mut text = first.to_str().ok()?.trim().to_owned();
    for v in values {
        text.push(',');
        text.push_str(v.to_str().ok()?.trim());
    }
    if text.is_empty() || text.len() > MAX_TRACESTATE {
        return None;
    }
    HeaderValue::try_from(text).ok()
}

fn new_trace_id() -> u128 {
    loop {
        let id = fastrand::u128(..);
        if id != 0 {
            return id;
        }
    }
}

fn new_span_id() -> u64 {
    loop {
        let id = fastrand::u64(..);
        if id != 0 {
            return id;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_valid_traceparent_is_continued_with_our_span_as_parent() {
        let h = headers(&[(TRACEPARENT, VALID), (TRACESTATE, "congo=t61rcWkgMzE")]);
        let t = TraceContext::from_headers(&h, || false);
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.parent_span_id, Some(0x00f067aa0ba902b7));
        assert_ne!(t.span_id, 0x00f067aa0ba902b7);
        assert!(t.sampled());
        let out = t.traceparent();
        let out = out.to_str().unwrap();
        assert_eq!(&out[..36], "00-4bf92f3577b34da6a3ce929d0e0e4736-");
        assert_eq!(&out[36..52], t.span_id_hex());
        assert_eq!(&out[52..], "-01");
        assert_eq!(t.tracestate.unwrap(), "congo=t61rcWkgMzE");
    }

    #[test]
    fn traceparent_is_the_formatted_fields() {
        for (trace_id, span_id, flags) in [(1u128, 1u64, 0u8), (u128::MAX, u64::MAX, 0xff)] {
            let t = TraceContext {
                trace_id,
                span_id,
                parent_span_id: None,
                flags,
                tracestate: None,
            };
            let want = format!("00-{trace_id:032x}-{span_id:016x}-{flags:02x}");
            assert_eq!(t.traceparent(), want.as_str());
        }
        let t = TraceContext::from_headers(&HeaderMap::new(), || true);
        let want = format!("00-{}-{}-01", t.trace_id_hex(), t.span_id_hex());
        assert_eq!(t.traceparent(), want.as_str());
    }

    #[test]
    fn malformed_values_are_refused() {
        let bad = [
            // version ff
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            // all-zero trace id / parent id
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            // bad lengths
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
            "",
            // not hex, or uppercase hex
            "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
            // wrong separators
            "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
            // a later version, longer, without a dash after the flags
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",
        ];
        for value in bad {
            assert_eq!(parse_traceparent(value.as_bytes()), None, "{value:?}");
        }
    }

    #[test]
    fn later_versions_are_read_by_their_first_fields() {
        let v = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-the-future-adds";
        let p = parse_traceparent(v.as_bytes()).unwrap();
        assert_eq!(p.span_id, 0x00f067aa0ba902b7);
        assert!(parse_traceparent(&v.as_bytes()[..55]).is_some());
    }

    #[test]
    fn missing_malformed_or_repeated_starts_a_new_trace_without_tracestate() {
        let cases = [
            headers(&[]),
            headers(&[(TRACEPARENT, "garbage"), (TRACESTATE, "a=b")]),
            headers(&[(TRACEPARENT, VALID), (TRACEPARENT, VALID)]),
        ];
        for h in cases {
            let t = TraceContext::from_headers(&h, || true);
            assert_ne!(t.trace_id, 0);
            assert_ne!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
            assert_eq!(t.parent_span_id, None);
            assert!(t.sampled(), "the new trace's flag is the sampler's");
            assert_eq!(t.tracestate, None);
        }
        let t = TraceContext::from_headers(&headers(&[]), || false);
        assert!(!t.sampled());
    }

    #[test]
    fn tracestate_lines_are_joined_and_oversized_dropped() {
        let h = headers(&[
            (TRACEPARENT, VALID),
            (TRACESTATE, "a=1"),
            (TRACESTATE, "b=2"),
        ]);
        let t = TraceContext::from_headers(&h, || false);
        assert_eq!(t.tracestate.unwrap(), "a=1,b=2");
        let h = headers(&[(TRACEPARENT, VALID), (TRACESTATE, " a=1 ")]);
        let t = TraceContext::from_headers(&h, || false);
        assert_eq!(t.tracestate.unwrap(), "a=1", "one line, trimmed");
        let exact = "k=".to_owned() + &"v".repeat(MAX_TRACESTATE - 2);
        let h = headers(&[(TRACEPARENT, VALID), (TRACESTATE, &exact)]);
        let t = TraceContext::from_headers(&h, || false);
        assert_eq!(
            t.tracestate.unwrap(),
            exact.as_str(),
            "512 is kept as received"
        );
        let long = "k=".to_owned() + &"v".repeat(600);
        let h = headers(&[(TRACEPARENT, VALID), (TRACESTATE, &long)]);
        assert_eq!(TraceContext::from_headers(&h, || false).tracestate, None);
    }

    #[test]
    fn write_headers_replaces_the_clients() {
        let mut h = headers(&[(TRACEPARENT, "bogus"), (TRACESTATE, "x=y")]);
        let t = TraceContext::from_headers(&h, || false);
        t.write_headers(&mut h);
        assert_eq!(h.get_all(TRACEPARENT).iter().count(), 1);
        assert!(parse_traceparent(h[TRACEPARENT].as_bytes()).is_some());
        assert!(!h.contains_key(TRACESTATE));
    }
}
