//! gRPC seen from the gateway: which calls are gRPC, their status for the call record, and
//! the gateway's own refusals in the form gRPC clients read.
//!
//! A gRPC client reads the outcome from `grpc-status` / `grpc-message` (in trailers, or in
//! the headers of a response without a body), not from the HTTP status: a refusal of a
//! gRPC call is HTTP 200 with those two headers, so the client sees UNAUTHENTICATED rather
//! than a transport error. The call record keeps the refusal's HTTP status and kind.

use http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use http::StatusCode;

pub const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");
pub const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// The codes of the gRPC spec, as they are written on the wire and in the record.
const CODES: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];
const UNKNOWN: u8 = 2;

pub fn is_grpc(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"))
}

/// The status a response's (or trailers') `grpc-status` names; a value outside the spec's
/// codes is UNKNOWN, as a gRPC client reads it.
pub fn status_in(headers: &HeaderMap) -> Option<&'static str> {
    let value = headers.get(GRPC_STATUS)?;
    let code = std::str::from_utf8(value.as_bytes())
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .filter(|&c| c < CODES.len())
        .unwrap_or(UNKNOWN as usize);
    Some(CODES[code])
}

/// HTTP/1.1 sends only the trailer fields a response announced in `Trailer`; an HTTP/2
/// upstream announces none, so gRPC's own are announced for it (other metadata trailers
/// reach HTTP/2 clients only).
pub fn declare_trailers(h: &mut HeaderMap) {
    h.insert(
        http::header::TRAILER,
        HeaderValue::from_static("grpc-status, grpc-message, grpc-status-details-bin"),
    );
}

/// gRPC's code for a refusal with this HTTP status.
pub fn code_for(status: StatusCode) -> u8 {
    match status.as_u16() {
        400 | 414 | 431 => 3,  // INVALID_ARGUMENT
        401 => 16,             // UNAUTHENTICATED
        403 => 7,              // PERMISSION_DENIED
        404 | 405 | 501 => 12, // UNIMPLEMENTED
        408 | 504 => 4,        // DEADLINE_EXCEEDED
        413 | 429 => 8,        // RESOURCE_EXHAUSTED
        500 => 13,             // INTERNAL
        502 | 503 => 14,       // UNAVAILABLE
        _ => UNKNOWN,
    }
}

/// Make `h` the headers of a trailers-only gRPC response: content type, status, message.
/// Returns the status as recorded.
pub fn refusal(h: &mut HeaderMap, status: StatusCode, message: &str) -> &'static str {
    let code = CODES[code_for(status) as usize];
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    h.insert(GRPC_STATUS, HeaderValue::from_static(code));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert(GRPC_MESSAGE, v);
    }
    code
}

/// grpc-message is percent-encoded: every byte outside printable ASCII, and `%` itself.
fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for b in message.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_get_the_codes_grpc_clients_expect() {
        assert_eq!(code_for(StatusCode::UNAUTHORIZED), 16);
        assert_eq!(code_for(StatusCode::TOO_MANY_REQUESTS), 8);
        assert_eq!(code_for(StatusCode::BAD_GATEWAY), 14);
        assert_eq!(code_for(StatusCode::GATEWAY_TIMEOUT), 4);
        assert_eq!(code_for(StatusCode::IM_A_TEAPOT), 2);
        let mut h = HeaderMap::new();
        assert_eq!(
            refusal(&mut h, StatusCode::UNAUTHORIZED, "no key: 100%\n"),
            "16"
        );
        assert_eq!(h[GRPC_STATUS], "16");
        assert_eq!(h[GRPC_MESSAGE], "no key: 100%25%0A");
        assert_eq!(h[CONTENT_TYPE], "application/grpc");
    }

    #[test]
    fn recorded_status_is_a_spec_code() {
        let mut h = HeaderMap::new();
        assert_eq!(status_in(&h), None);
        h.insert(GRPC_STATUS, HeaderValue::from_static("5"));
        assert_eq!(status_in(&h), Some("5"));
        h.insert(GRPC_STATUS, HeaderValue::from_static("99"));
        assert_eq!(status_in(&h), Some("2"));
        h.insert(GRPC_STATUS, HeaderValue::from_static("x"));
        assert_eq!(status_in(&h), Some("2"));
        h.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/grpc+proto"),
        );
        assert!(is_grpc(&h));
    }
}
