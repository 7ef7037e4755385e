//! Every response the gateway makes up itself: a status, a stable `kind`, and a JSON body that
//! carries the request id, e.g.
//! `{"error":{"status":429,"kind":"rate_limited","message":"...","request_id":"..."}}`.

use bytes::Bytes;
use http::StatusCode;

use crate::plugins::rate_limit::Decision;

#[derive(Debug, Clone)]
pub enum Reject {
    BadRequest(&'static str),
    Unauthorized(&'static str),
    /// As Unauthorized, but the client should answer with Basic credentials.
    BasicUnauthorized(&'static str),
    IpForbidden,
    NoRoute,
    MethodNotAllowed(String),
    RequestTimeout,
    /// The client stopped sending its body (`client_body_timeout`); never the upstream's fault.
    ClientBodyTimeout,
    /// The client closed the connection (or reset the stream) in the middle of its body:
    /// recorded as nginx's 499; nobody reads the answer.
    ClientClosed,
    BodyTooLarge,
    UriTooLong,
    RateLimited(Decision),
    HeaderTooLarge,
    UpstreamUnavailable,
    /// No TLS connection to any target: certificate not trusted, not for the name, expired.
    UpstreamTls,
    UpstreamTimeout,
    /// A Python plugin refused the call, failed or timed out; see python/phases.rs.
    Plugin(Box<PluginRefusal>),
}

#[derive(Debug, Clone)]
pub struct PluginRefusal {
    pub status: StatusCode,
    pub kind: &'static str,
    pub message: String,
    pub headers: http::HeaderMap,
}

impl Reject {
    pub fn status(&self) -> StatusCode {
        match self {
            Reject::BadRequest(_) => StatusCode::BAD_REQUEST,
            Reject::Unauthorized(_) | Reject::BasicUnauthorized(_) => StatusCode::UNAUTHORIZED,
            Reject::IpForbidden => StatusCode::FORBIDDEN,
            Reject::NoRoute => StatusCode::NOT_FOUND,
            Reject::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Reject::RequestTimeout | Reject::ClientBodyTimeout => StatusCode::REQUEST_TIMEOUT,
            Reject::ClientClosed => {
                StatusCode::from_u16(crate::records::CLIENT_CLOSED).expect("499 is a status code")
            }
            Reject::BodyTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Reject::UriTooLong => StatusCode::URI_TOO_LONG,
            Reject::RateLimited(d) if d.cluster_down => StatusCode::SERVICE_UNAVAILABLE,
            Reject::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            Reject::HeaderTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Reject::UpstreamUnavailable | Reject::UpstreamTls => StatusCode::BAD_GATEWAY,
            Reject::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Reject::Plugin(p) => p.status,
        }
    }

    /// Stable names: they are what analysts filter on in the `error_kind` column.
    pub fn kind(&self) -> &'static str {
        match self {
            Reject::BadRequest(_) => "bad_request",
            Reject::Unauthorized(_) | Reject::BasicUnauthorized(_) => "unauthorized",
            Reject::IpForbidden => "ip_forbidden",
            Reject::NoRoute => "no_route",
            Reject::MethodNotAllowed(_) => "method_not_allowed",
            Reject::RequestTimeout => "request_timeout",
            Reject::ClientBodyTimeout => "client_body_timeout",
            Reject::ClientClosed => "client_closed",
            Reject::BodyTooLarge => "body_too_large",
            Reject::UriTooLong => "uri_too_long",
            Reject::RateLimited(d) if d.cluster_down => "rate_limit_unavailable",
            Reject::RateLimited(_) => "rate_limited",
            Reject::HeaderTooLarge => "header_too_large",
            Reject::UpstreamUnavailable => "upstream_unavailable",
            Reject::UpstreamTls => "upstream_tls",
            Reject::UpstreamTimeout => "upstream_timeout",
            Reject::Plugin(p) => p.kind,
        }
    }

    pub fn message(&self) -> String {
        match self {
            Reject::BadRequest(m) | Reject::Unauthorized(m) | Reject::BasicUnauthorized(m) => {
                (*m).to_string()
            }
            Reject::IpForbidden => "this client address may not call this route".into(),
            Reject::NoRoute => "no route matches this host and path".into(),
            Reject::MethodNotAllowed(allow) => format!("method not allowed; allowed: {allow}"),
            Reject::RequestTimeout => "the request head was not received in time".into(),
            Reject::ClientBodyTimeout => {
                "the client stopped sending the request body (client_body_timeout)".into()
            }
            Reject::ClientClosed => "the client closed the connection mid-request".into(),
            Reject::BodyTooLarge => "request body exceeds the configured limit".into(),
            Reject::UriTooLong => "request URI exceeds the configured limit".into(),
            Reject::RateLimited(d) if d.cluster_down => {
                "the shared rate limit's Redis is unreachable and this route fails closed \
                 (cluster.on_redis_down: fail_closed); retry in 1 s"
                    .into()
            }
            Reject::RateLimited(d) => {
                format!("rate limit exceeded; retry in {} s", d.retry_after_secs)
            }
            Reject::HeaderTooLarge => "request headers exceed the configured limit".into(),
            Reject::UpstreamUnavailable => "no upstream target could serve the request".into(),
            Reject::UpstreamTls => {
                "the TLS handshake with the upstream failed (its certificate was not accepted)"
                    .into()
            }
            Reject::UpstreamTimeout => "the upstream did not answer in time".into(),
            Reject::Plugin(p) => p.message.clone(),
        }
    }
}

impl Reject {
    pub fn plugin_error(message: impl Into<String>) -> Reject {
        Reject::plugin(StatusCode::INTERNAL_SERVER_ERROR, "plugin_error", message)
    }

    pub fn plugin(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Reject {
        Reject::Plugin(Box::new(PluginRefusal {
            status,
            kind,
            message: message.into(),
            headers: http::HeaderMap::new(),
        }))
    }
}

/// Error kinds named by Python plugins become `&'static str` like the core's own, so the call
/// record stays allocation-free. Plugins use a handful of stable names; past a bound, new ones
/// fold into "plugin_error" so a plugin cannot grow this set without limit.
pub fn intern_kind(kind: &str) -> &'static str {
    use std::collections::HashSet;
    use std::sync::Mutex;
    static KINDS: Mutex<Option<HashSet<&'static str>>> = Mutex::new(None);
    const MAX_KINDS: usize = 256;
    let mut guard = KINDS.lock().unwrap_or_else(|e| e.into_inner());
    let kinds = guard.get_or_insert_with(HashSet::new);
    if let Some(k) = kinds.get(kind) {
        return k;
    }
    let valid = !kind.is_empty()
        && kind.len() <= 64
        && kind
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid || kinds.len() >= MAX_KINDS {
        return "plugin_error";
    }
    let leaked: &'static str = Box::leak(kind.to_owned().into_boxed_str());
    kinds.insert(leaked);
    leaked
}

pub fn json_body(status: StatusCode, kind: &str, message: &str, request_id: &str) -> Bytes {
    let body = serde_json::json!({
        "error": {
            "status": status.as_u16(),
            "kind": kind,
            "message": message,
            "request_id": request_id,
        }
    });
    Bytes::from(body.to_string())
}

/// A complete HTTP/1.1 error response as raw bytes, for the connection layer that answers
/// malformed requests before any handler runs (see conn_io.rs).
pub fn raw_response(status: StatusCode, kind: &str, message: &str, request_id: &str) -> Vec<u8> {
    let body = json_body(status, kind, message, request_id);
    let mut out = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-request-id: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len(),
        request_id
    )
    .into_bytes();
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_request_id() {
        let r = Reject::NoRoute;
        let b = json_body(r.status(), r.kind(), &r.message(), "abc");
        let v: serde_json::Value = serde_json::from_slice(&b).unwrap();
        assert_eq!(v["error"]["status"], 404);
        assert_eq!(v["error"]["kind"], "no_route");
        assert_eq!(v["error"]["request_id"], "abc");
    }

    #[test]
    fn plugin_kinds_are_interned_and_checked() {
        assert!(std::ptr::eq(
            intern_kind("circuit_open"),
            intern_kind("circuit_open")
        ));
        assert_eq!(intern_kind("Bad Kind"), "plugin_error");
        assert_eq!(intern_kind(""), "plugin_error");
    }

    #[test]
    fn raw_response_is_well_formed() {
        let raw = raw_response(StatusCode::URI_TOO_LONG, "uri_too_long", "m", "id1");
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(head.contains(&format!("content-length: {}", body.len())));
    }
}
