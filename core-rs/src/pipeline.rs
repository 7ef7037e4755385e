//! A request's whole life, phase by phase. Read this file top to bottom to know what the
//! gateway does with a call:
//!
//! 1. `accept`      give the call a request id and a call record; enforce size limits
//! 2. `route`       find the route by host, path and method
//! 3. `guard`       ip-restriction; a CORS preflight is answered here
//! 4. `authenticate` key-auth: who is the consumer
//! 5. `rate_limit`  token bucket per consumer, client IP or route
//! 6. `python access` (routes with Python plugins only) may change the request, pick another
//!    upstream or answer directly (python_phases.rs, bridge.rs)
//! 7. `proxy`       rewrite headers and forward to an upstream target (proxy.rs)
//! 8. `respond`     stream the upstream's answer back with our headers (and CORS headers);
//!    `python response` plugins may change it first
//! 9. `log`         the call record is finished when the response body ends (body.rs), then
//!    handed to `python log` plugins
//!
//! Any phase may refuse the call with a `Reject`, which becomes a JSON error response.

use std::borrow::Cow;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::request::Parts;
use http::{Request, Response, StatusCode, Uri, Version};
use hyper::body::Incoming;

use crate::body::{CallLog, RequestBody, ResponseBody};
use crate::clock::{now_ns, unix_ms};
use crate::config::{Limits, RateLimitKey};
use crate::errors::{json_body, Reject};
use crate::plugins::cors::Cors;
use crate::plugins::key_auth::{extract_key, hide_key};
use crate::plugins::rate_limit::Decision;
use crate::proxy;
use crate::python_phases::{self, Access, UpstreamSource};
use crate::records::CallRecord;
use crate::request_id;
use crate::router::RouteMatch;
use crate::state::{GatewayState, Route, Shared};
use crate::upstream::Upstream;

/// What a connection knows about itself; shared by the requests on it.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub worker: usize,
}

pub async fn handle(req: Request<Incoming>, ctx: &ConnCtx) -> Response<ResponseBody> {
    let started = Instant::now();
    let state = ctx.shared.state.load_full();
    let (parts, body) = req.into_parts();
    let client_version = parts.version;

    // 1. accept
    let mut call = accept(&parts, ctx, started, state.record_calls);
    let head_bytes = match check_limits(&parts, &state.limits) {
        Ok(n) => n,
        Err(reject) => return refuse(reject, call, None),
    };
    call.record.bytes_in = head_bytes;

    // 2. route
    let route = match state
        .router
        .find(host_of(&parts), parts.uri.path(), &parts.method)
    {
        RouteMatch::Found(i) => &state.routes[i],
        RouteMatch::MethodNotAllowed(allow) => {
            return refuse(Reject::MethodNotAllowed(allow), call, None)
        }
        RouteMatch::NotFound => return refuse(Reject::NoRoute, call, None),
    };
    call.record.route = Some(route.name.clone());
    call.python_log = route.python.as_ref().is_some_and(|p| p.log);
    // Browsers need the CORS headers on every answer of the route, refusals included.
    let origin = route
        .cors
        .as_ref()
        .and_then(|_| parts.headers.get(header::ORIGIN).cloned());
    let mut response = serve_route(route, &state, parts, body, call, ctx, client_version).await;
    if let (Some(cors), Some(origin)) = (&route.cors, &origin) {
        cors.decorate(origin, response.headers_mut());
    }
    response
}

/// Phases 3 to 7, once the route is known.
async fn serve_route(
    route: &Route,
    state: &GatewayState,
    mut parts: Parts,
    body: Incoming,
    mut call: CallLog,
    ctx: &ConnCtx,
    client_version: Version,
) -> Response<ResponseBody> {
    // 3. guard
    if let Some(ip_rules) = &route.ip_restriction {
        if !ip_rules.permits(ctx.peer.ip()) {
            return refuse(Reject::IpForbidden, call, None);
        }
    }
    if let Some(cors) = &route.cors {
        if Cors::is_preflight(&parts.method, &parts.headers) {
            return preflight(cors, &parts.headers, call);
        }
    }

    // 4. authenticate
    if let Err(reject) = authenticate(route, state, &mut parts.headers, &mut call) {
        return refuse(reject, call, None);
    }

    // 5. rate_limit
    let limit = match rate_limit(route, ctx, &mut call) {
        Ok(decision) => decision,
        Err(reject) => return refuse(reject, call, None),
    };

    // 6. python access (only routes with Python plugins: they see the whole request)
    let python = route.python.as_ref();
    let mut chosen: Option<Arc<Upstream>> = None;
    let mut view = None;
    let (request_body, meter) = match python.filter(|p| p.access || p.response) {
        None => RequestBody::new(body, state.limits.max_body_bytes),
        Some(py) => {
            let whole = if py.access {
                let deadline = route.upstream.read_timeout;
                match python_phases::read_body(body, state.limits.max_body_bytes, deadline).await {
                    Ok(b) => b,
                    Err(reject) => return refuse(reject, call, limit),
                }
            } else {
                drop(body);
                Bytes::new()
            };
            call.record.bytes_in += whole.len() as u64;
            let shown = python_phases::request_view(
                &parts,
                &route.name,
                &call.record.request_id,
                call.record.consumer.clone(),
                ctx.peer.ip().to_canonical(),
                whole.clone(),
                py.timeout_ms,
            );
            view = Some(shown.clone());
            let mut sent = whole;
            if py.access {
                match python_phases::access(&ctx.shared.bridge, shown, &mut parts, &state.upstreams)
                    .await
                {
                    Ok(Access::Proceed { body, upstream }) => {
                        sent = body;
                        chosen = upstream;
                    }
                    Ok(Access::Answer {
                        status,
                        headers,
                        body,
                    }) => return answer(status, headers, body, call, limit),
                    Err(reject) => return refuse(reject, call, limit),
                }
            }
            (RequestBody::full(sent), None)
        }
    };

    // 7. proxy
    let upstream = chosen.as_ref().unwrap_or(&route.upstream);
    let upstream_req = upstream_request(parts, request_body, route, ctx, &call);
    let forwarded = proxy::forward(upstream, route.preserve_host, upstream_req, ctx.worker).await;
    let forwarded = match forwarded {
        Ok(f) => f,
        Err(failure) => {
            call.record.upstream_addr = failure.addr;
            let upload_failed = meter.as_ref().map(|m| {
                (
                    m.too_large.load(Ordering::Relaxed),
                    m.client_failed.load(Ordering::Relaxed),
                )
            });
            let reject = match upload_failed {
                Some((true, _)) => Reject::BodyTooLarge,
                Some((_, true)) => Reject::BadRequest("the request body could not be read"),
                _ => {
                    let stats = ctx.shared.stats.worker(ctx.worker);
                    stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    failure.reject
                }
            };
            return refuse(reject, call, limit);
        }
    };
    if let Some(m) = &meter {
        call.record.bytes_in += m.bytes.load(Ordering::Relaxed);
    }

    // 8. respond (9. log happens when the body below has been sent)
    let (mut head, upstream_body) = forwarded.response.into_parts();
    // Answer in the client's HTTP version, whatever the upstream spoke.
    head.version = client_version;
    strip_hop_by_hop(&mut head.headers);
    call.record.upstream_addr = Some(forwarded.conn.target.addr.clone());
    call.record.upstream_latency_us = forwarded.upstream_latency.as_micros() as u64;
    let body = match (python.filter(|p| p.response), view) {
        (Some(_), Some(shown)) => {
            // python response: the plugins may change status, headers and a non-streamed body
            let changed = python_phases::respond(
                &ctx.shared.bridge,
                shown,
                &mut head,
                upstream_body,
                forwarded.conn,
                upstream.read_timeout,
                state.limits.max_body_bytes,
            )
            .await;
            match changed {
                Ok(source) => {
                    strip_hop_by_hop(&mut head.headers);
                    source
                }
                Err(reject) => return refuse(reject, call, limit),
            }
        }
        _ => UpstreamSource::Stream(upstream_body, forwarded.conn),
    };
    set_request_id(&mut head.headers, &call.record.request_id);
    if let Some(d) = limit {
        set_rate_limit_headers(&mut head.headers, &d);
    }
    call.record.status = head.status.as_u16();
    let body = match body {
        UpstreamSource::Stream(b, conn) => ResponseBody::upstream(b, conn, call),
        UpstreamSource::Whole(b) => ResponseBody::generated(b, call),
    };
    Response::from_parts(head, body)
}

/// A Python access plugin's direct answer: the upstream is never called.
fn answer(
    status: StatusCode,
    mut headers: HeaderMap,
    body: Bytes,
    mut call: CallLog,
    limit: Option<Decision>,
) -> Response<ResponseBody> {
    strip_hop_by_hop(&mut headers);
    headers.remove(header::CONTENT_LENGTH); // hyper sets it from the body
    set_request_id(&mut headers, &call.record.request_id);
    if let Some(d) = limit {
        set_rate_limit_headers(&mut headers, &d);
    }
    call.record.status = status.as_u16();
    let mut response = Response::new(ResponseBody::generated(body, call));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}

/// The gateway's own answer to a CORS preflight: 204 with the allowed methods and headers.
fn preflight(cors: &Cors, request: &HeaderMap, mut call: CallLog) -> Response<ResponseBody> {
    call.record.status = StatusCode::NO_CONTENT.as_u16();
    let mut h = HeaderMap::new();
    set_request_id(&mut h, &call.record.request_id);
    cors.preflight_headers(request, &mut h);
    let mut response = Response::new(ResponseBody::generated(Bytes::new(), call));
    *response.status_mut() = StatusCode::NO_CONTENT;
    *response.headers_mut() = h;
    response
}

fn accept(parts: &Parts, ctx: &ConnCtx, started: Instant, keep: bool) -> CallLog {
    ctx.shared
        .stats
        .worker(ctx.worker)
        .requests
        .fetch_add(1, Ordering::Relaxed);
    let record = CallRecord {
        ts_ms: unix_ms(),
        request_id: request_id::from_headers_or_new(&parts.headers),
        route: None,
        consumer: None,
        method: Some(parts.method.clone()),
        host: if keep {
            host_of(parts).to_owned()
        } else {
            String::new()
        },
        path: if keep {
            parts.uri.path().to_owned()
        } else {
            String::new()
        },
        status: 0,
        latency_us: 0,
        upstream_latency_us: 0,
        bytes_in: 0,
        bytes_out: 0,
        client_ip: Some(ctx.peer.ip().to_canonical()),
        upstream_addr: None,
        error_kind: "",
        rate_limited: false,
    };
    CallLog::new(record, started, ctx.shared.clone(), ctx.worker, keep)
}

fn host_of(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or("")
}

/// hyper enforces its own (larger) buffer limit; these are the operator's limits, answered with
/// our JSON errors. Returns the size of the request head, which counts toward `bytes_in`.
fn check_limits(parts: &Parts, limits: &Limits) -> Result<u64, Reject> {
    let uri_len = parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return Err(Reject::UriTooLong);
    }
    // "METHOD URI HTTP/1.1\r\n" + "name: value\r\n"... + "\r\n"
    let mut head = parts.method.as_str().len() + 1 + uri_len + 11 + 2;
    for (name, value) in &parts.headers {
        head += name.as_str().len() + 2 + value.len() + 2;
    }
    if head > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(Reject::BodyTooLarge);
    }
    Ok(head as u64)
}

fn authenticate(
    route: &Route,
    state: &GatewayState,
    headers: &mut HeaderMap,
    call: &mut CallLog,
) -> Result<(), Reject> {
    // Upstreams trust this header, so a client must never be able to set it.
    headers.remove(CONSUMER_HEADER);
    let name: Arc<str> = if let Some(key_auth) = &route.key_auth {
        let (key, source) = extract_key(headers).ok_or(Reject::Unauthorized(
            "missing API key: send it in the apikey or x-api-key header, or as Authorization: Bearer <key>",
        ))?;
        let consumer = state
            .keys
            .lookup(key)
            .ok_or(Reject::Unauthorized("invalid API key"))?;
        if key_auth.hide_credentials {
            hide_key(headers, source);
        }
        state.consumers[consumer].clone()
    } else if let Some(basic) = &route.basic_auth {
        let consumer = state
            .basic_credentials
            .check(headers)
            .map_err(Reject::BasicUnauthorized)?;
        if basic.hide_credentials {
            headers.remove(header::AUTHORIZATION);
        }
        state.consumers[consumer].clone()
    } else if let Some(jwt) = &route.jwt {
        let consumer = jwt.verify(headers).map_err(Reject::Unauthorized)?;
        if jwt.hide_credentials {
            headers.remove(header::AUTHORIZATION);
        }
        Arc::from(consumer)
    } else {
        return Ok(());
    };
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(CONSUMER_HEADER, v);
    }
    call.record.consumer = Some(name);
    Ok(())
}

const CONSUMER_HEADER: &str = "x-consumer-username";

fn rate_limit(
    route: &Route,
    ctx: &ConnCtx,
    call: &mut CallLog,
) -> Result<Option<Decision>, Reject> {
    let Some(limiter) = &route.rate_limit else {
        return Ok(None);
    };
    let key: Cow<str> = match limiter.key_kind() {
        RateLimitKey::Consumer => Cow::Borrowed(call.record.consumer.as_deref().unwrap_or("")),
        RateLimitKey::Ip => Cow::Owned(ctx.peer.ip().to_canonical().to_string()),
        RateLimitKey::Route => Cow::Borrowed(&*route.name),
    };
    let decision = limiter.check(&key, now_ns());
    if decision.allowed {
        return Ok(Some(decision));
    }
    call.record.rate_limited = true;
    ctx.shared
        .stats
        .worker(ctx.worker)
        .rate_limited
        .fetch_add(1, Ordering::Relaxed);
    Err(Reject::RateLimited(decision))
}

fn upstream_request(
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
fn strip_hop_by_hop(headers: &mut HeaderMap) {
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

fn set_request_id(headers: &mut HeaderMap, id: &str) {
    if let Ok(v) = HeaderValue::from_str(id) {
        headers.insert(request_id::HEADER, v);
    }
}

fn set_rate_limit_headers(headers: &mut HeaderMap, d: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(d.limit));
    headers.insert("x-ratelimit-remaining", HeaderValue::from(d.remaining));
    headers.insert("x-ratelimit-reset", HeaderValue::from(d.reset_secs));
}

/// Turn a refusal into its JSON response; the call record is finished with it.
fn refuse(reject: Reject, mut call: CallLog, limit: Option<Decision>) -> Response<ResponseBody> {
    let status = reject.status();
    call.record.status = status.as_u16();
    call.record.error_kind = reject.kind();
    let body = json_body(
        status,
        reject.kind(),
        &reject.message(),
        &call.record.request_id,
    );
    let mut h = HeaderMap::new();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    set_request_id(&mut h, &call.record.request_id);
    if let Some(d) = limit {
        set_rate_limit_headers(&mut h, &d);
    }
    match &reject {
        Reject::RateLimited(d) => {
            set_rate_limit_headers(&mut h, d);
            h.insert(header::RETRY_AFTER, HeaderValue::from(d.retry_after_secs));
        }
        Reject::MethodNotAllowed(allow) => {
            if let Ok(v) = HeaderValue::from_str(allow) {
                h.insert(header::ALLOW, v);
            }
        }
        Reject::Plugin(refusal) => {
            for (name, value) in &refusal.headers {
                h.insert(name, value.clone());
            }
        }
        Reject::Unauthorized(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"pygate\""),
            );
        }
        Reject::BasicUnauthorized(_) => {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"pygate\", charset=\"UTF-8\""),
            );
        }
        _ => {}
    }
    let mut response = Response::new(ResponseBody::generated(body, call));
    *response.status_mut() = status;
    *response.headers_mut() = h;
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 200,
            max_uri_bytes: 50,
            max_body_bytes: 1000,
            header_timeout_ms: 1000,
        }
    }

    #[test]
    fn within_limits_reports_head_size() {
        let n = check_limits(&parts("/a?b=c", &[("host", "x")]), &limits()).unwrap();
        // "POST /a?b=c HTTP/1.1\r\n" (22) + "host: x\r\n" (9) + "\r\n" (2)
        assert_eq!(n, 33);
    }

    #[test]
    fn long_uri_is_414() {
        let uri = format!("/{}", "a".repeat(60));
        let r = check_limits(&parts(&uri, &[]), &limits()).err().unwrap();
        assert_eq!(r.status(), 414);
    }

    #[test]
    fn big_headers_are_431() {
        let big = "v".repeat(250);
        let r = check_limits(&parts("/", &[("x-big", &big)]), &limits())
            .err()
            .unwrap();
        assert_eq!(r.status(), 431);
    }

    #[test]
    fn declared_body_over_limit_is_413() {
        let r = check_limits(&parts("/", &[("content-length", "1001")]), &limits())
            .err()
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(check_limits(&parts("/", &[("content-length", "1000")]), &limits()).is_ok());
    }

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
