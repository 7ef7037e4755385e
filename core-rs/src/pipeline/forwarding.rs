//! What an upstream request and a client response carry besides the payload: forwarded
//! headers, the request id, rate-limit headers, and no hop-by-hop headers.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Uri, Version};

use super::ConnCtx;
use crate::body::{CallLog, RequestBody};
use crate::plugins::rate_limit::Decision;
use crate::request_id;
use crate::state::Route;

pub fn upstream_request(
    mut parts: Parts,
    body: RequestBody,
    route: &Route,
    ctx: &ConnCtx,
    call: &CallLog,
) -> Request<RequestBody> {
    let original_host = parts.headers.get(header::HOST).cloned();
    strip_hop_by_hop(&mut parts.headers);
    let h = &mut parts.headers;
    let client_ip = ctx.peer.ip().to_canonical().to_string();
    let forwarded_for = match h.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        h.insert(X_FORWARDED_FOR, v);
    }
    h.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    if let Some(host) = original_host {
        h.entry(X_FORWARDED_HOST).or_insert(host);
    }
    set_request_id(h, &call.record.request_id);
    for (name, value) in &route.inject_headers {
        h.insert(name, value.clone());
    }
    // Upstreams get origin-form URIs ("/path?query") over HTTP/1.1 whatever the client sent.
    if let Some(pq) = parts.uri.path_and_query() {
        parts.uri = Uri::from(pq.clone());
    }
    parts.version = Version::HTTP_11;
    Request::from_parts(parts, body)
}

const X_FORWARDED_FOR: &str = "x-forwarded-for";
const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
const X_FORWARDED_HOST: &str = "x-forwarded-host";

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1),
/// plus any header the peer listed in `Connection`.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

pub fn set_request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(request_id::HEADER, v);
    }
}

pub fn set_rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(d.reset_secs));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        h.insert("connection", "keep-alive, x-secret".parse().unwrap());
        h.insert("x-secret", "1".parse().unwrap());
        h.insert("keep-alive", "timeout=5".parse().unwrap());
        h.insert("transfer-encoding", "chunked".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-kept"));
    }
}
