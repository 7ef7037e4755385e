//! What an upstream request and a client response carry besides the payload: forwarded
//! headers, the request id, rate-limit headers, and no hop-by-hop headers.

use std::net::IpAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Uri, Version};

use super::ownership::{
    forwarded_element, protected_from_connection, FORWARDED_NAME, X_FORWARDED_FOR_NAME,
    X_FORWARDED_HOST_NAME, X_FORWARDED_PROTO_NAME, X_REAL_IP_NAME,
};
use super::ConnCtx;
use crate::body::RequestBody;
use crate::plugins::rate_limit::Decision;
use crate::records::CallLog;
use crate::request_id;
use crate::state::Route;
use crate::text::push_ip;

pub fn upstream_request(
    mut parts: Parts,
    body: RequestBody,
    route: &Route,
    ctx: &ConnCtx,
    call: &CallLog,
) -> Request<RequestBody> {
    // The client's own hop-by-hop headers went in phase 3 (ownership.rs); this catches any
    // a Python access plugin set.
    strip_hop_by_hop(&mut parts.headers);
    set_forwarding_headers(&mut parts.headers, ctx.peer.ip().to_canonical(), call);
    let h = &mut parts.headers;
    set_request_id(h, &call.record.request_id);
    if let Some(trace) = &call.trace {
        trace.write_headers(h);
    }
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

/// This hop's forwarding headers. What arrives here from the client was sent by a trusted
/// proxy (ownership.rs dropped the rest), so lists are appended to and the proxy's Host and
/// Proto are kept; X-Real-IP is always the client address the gateway believes.
fn set_forwarding_headers(h: &mut HeaderMap, peer: IpAddr, call: &CallLog) {
    // Values are built from owned Strings (no copy), the peer's text is shared between
    // X-Forwarded-For and X-Real-IP when they agree, and the names are parsed once
    // (ownership.rs): this runs on every request.
    let Ok(peer_value) = HeaderValue::try_from(ip_text(peer)) else {
        return;
    };
    let forwarded_for = match joined(h, &X_FORWARDED_FOR_NAME) {
        Some(mut prev) => {
            prev.push_str(", ");
            push_ip(&mut prev, peer);
            HeaderValue::try_from(prev).ok()
        }
        None => Some(peer_value.clone()),
    };
    if let Some(v) = forwarded_for {
        h.insert(&X_FORWARDED_FOR_NAME, v);
    }
    let element = forwarded_element(peer, h.get(header::HOST));
    let forwarded = match joined(h, &FORWARDED_NAME) {
        Some(prev) => prev + ", " + &element,
        None => element,
    };
    if let Ok(v) = HeaderValue::try_from(forwarded) {
        h.insert(&FORWARDED_NAME, v);
    }
    let real_ip = match call.record.client_ip {
        Some(client) if client != peer => HeaderValue::try_from(ip_text(client)).ok(),
        _ => Some(peer_value),
    };
    if let Some(v) = real_ip {
        h.insert(&X_REAL_IP_NAME, v);
    }
    if !h.contains_key(&X_FORWARDED_PROTO_NAME) {
        h.insert(&X_FORWARDED_PROTO_NAME, HeaderValue::from_static("http"));
    }
    if let Some(host) = h.get(header::HOST).cloned() {
        h.entry(&X_FORWARDED_HOST_NAME).or_insert(host);
    }
}

fn ip_text(ip: IpAddr) -> String {
    let mut text = String::with_capacity(39);
    push_ip(&mut text, ip);
    text
}

/// Every value of a list header, in order, as one comma-separated string.
fn joined(h: &HeaderMap, name: &HeaderName) -> Option<String> {
    let mut values = h.get_all(name).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    Some(values.fold(first.to_owned(), |acc, v| acc + ", " + v))
}

static KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
static PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The hop-by-hop headers, `Connection` first (its value names more).
fn hop_by_hop_names() -> [&'static HeaderName; 9] {
    [
        &header::CONNECTION,
        &header::TE,
        &header::TRAILER,
        &header::TRANSFER_ENCODING,
        &header::UPGRADE,
        &header::PROXY_AUTHORIZATION,
        &header::PROXY_AUTHENTICATE,
        &KEEP_ALIVE,
        &PROXY_CONNECTION,
    ]
}

/// Headers that describe one connection and must not be forwarded (RFC 9110 §7.6.1),
/// plus any header the peer listed in `Connection`, except those the gateway owns.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Runs on every request and response. One pass over the names (no hashing) says which
    // hop-by-hop headers are there; only those are removed (most responses carry just
    // `Connection: keep-alive`, and each removal of an absent name costs a lookup).
    let names = hop_by_hop_names();
    let mut present = 0u16;
    for name in headers.keys() {
        if let Some(i) = names.iter().position(|n| *n == name) {
            present |= 1 << i;
        }
    }
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        let listed: Vec<HeaderName> = headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
            .filter(|name| !protected_from_connection(name.as_str()))
            .collect();
        for name in listed {
            headers.remove(name);
        }
    }
    for (i, name) in names.into_iter().enumerate() {
        if present & (1 << i) != 0 {
            headers.remove(name);
        }
    }
}

pub fn set_request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(&request_id::HEADER_NAME, v);
    }
}

/// The draft's RateLimit-Policy / RateLimit fields and X-RateLimit-* (rate_limit.rs).
pub fn set_rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    d.write_headers(headers);
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
