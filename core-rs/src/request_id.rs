//! Request ids: a caller's `X-Request-Id` is kept when it looks sane, otherwise we make one.

use http::HeaderMap;

pub const HEADER: &str = "x-request-id";

/// A client-supplied id is passed on only if it is short printable ASCII, so it can be logged
/// and echoed without escaping surprises.
pub fn from_headers_or_new(headers: &HeaderMap) -> String {
    if let Some(v) = headers.get(HEADER) {
        let b = v.as_bytes();
        if !b.is_empty() && b.len() <= 128 && b.iter().all(|c| c.is_ascii_graphic()) {
            // Checked just above: printable ASCII is valid UTF-8.
            return String::from_utf8_lossy(b).into_owned();
        }
    }
    new_id()
}

/// 128 random bits as 32 lowercase hex digits.
pub fn new_id() -> String {
    format!("{:032x}", fastrand::u128(..))
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
    }
}
