//! Request ids: a caller's `X-Request-Id` is kept when it looks sane, otherwise we make one.

use http::{HeaderMap, HeaderName};

pub const HEADER: &str = "x-request-id";
/// `HEADER` parsed once: a `&str` name is parsed and validated on every map lookup.
pub static HEADER_NAME: HeaderName = HeaderName::from_static(HEADER);

/// A client-supplied id is passed on only if it is short printable ASCII, so it can be logged
/// and echoed without escaping surprises.
pub fn from_headers_or_new(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get(&HEADER_NAME) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            // Checked just above: printable ASCII is valid UTF-8.
            return String::from_utf8_lossy(b).into_owned();
        }
    }
    new_id()
}

/// 128 random bits as 32 lowercase hex digits (by hand: `format!("{:032x}")` costs several
/// times as much, on every request without an id).
pub fn new_id() -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bits = fastrand::u128(..);
    let mut id = String::with_capacity(32);
    for shift in (0..32).rev() {
        id.push(HEX[(bits >> (shift * 4)) as usize & 0xf] as char);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_sane_ids_and_replaces_odd_ones() {
        let mut h = HeaderMap::new();
        h.insert(HEADER, "abc-123".parse().unwrap());
        assert_eq!(from_headers_or_new(&h), "abc-123");
        h.insert(HEADER, "has space".parse().unwrap());
        assert_eq!(from_headers_or_new(&h).len(), 32);
        assert_ne!(new_id(), new_id());
        let id = new_id();
        assert_eq!(id.len(), 32);
        assert!(id
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
}
