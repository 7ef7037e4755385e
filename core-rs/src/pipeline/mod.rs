//! A request's whole life, phase by phase. Read this file top to bottom to know what the
//! gateway does with a call:
//!
//! 1. `accept`      give the call a request id and a call record; enforce size limits,
//!    one valid Host, and normalise the path (admission.rs, path_normalise.rs)
//! 2. `route`       find the route by host, normalised path and method
//! 3. `guard`       drop the client headers the gateway owns and find the client address
//!    (ownership.rs); the route's guard plugins (ip-restriction; cors answers preflights)
//! 4. `authenticate` the route's auth plugin (key-auth, basic-auth or jwt): who is the
//!    consumer (identity.rs)
//! 5. `rate_limit`  its limit plugins (rate-limit: a token bucket per consumer, client IP
//!    or route; identity.rs)
//! 6. `python access` (routes with Python plugins only) may change the request, pick another
//!    upstream or answer directly (python/phases.rs, python/bridge.rs)
//! 7. `proxy`       rewrite headers and forward to an upstream target (proxy.rs)
//! 8. `respond`     stream the upstream's answer back with our headers (and the plugins':
//!    cors); `python response` plugins may change it first
//! 9. `log`         the call record is finished when the response body ends
//!    (records/call_log.rs), then handed to `python log` plugins
//!
//! Any phase may refuse the call with a `Reject`, which becomes a JSON error response
//! (answers.rs). Headers added and removed on the way are in forwarding.rs. Native plugins
//! act in phases 3, 4, 5 and 8, each through its method of `plugins::Plugin`, walked over
//! the route's plugins in their order (plugins/mod.rs).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http::{Request, Response, StatusCode, Version};
use hyper::body::Incoming;
use hyper::upgrade::OnUpgrade;

mod admission;
mod answers;
mod forwarding;
mod identity;
pub mod ownership;

use admission::{admit_target, check_limits};
use answers::{answer, refuse};
use forwarding::{set_rate_limit_headers, set_request_id, strip_hop_by_hop, upstream_request};
use identity::{authenticate, rate_limit};
use ownership::own_request_headers;

use crate::body::{RequestBody, ResponseBody};
use crate::errors::Reject;
use crate::grpc;
use crate::path_normalise;
use crate::plugins::{Guarded, Notes, Verdict};
use crate::proxy;
use crate::python::phases::{self as python_phases, Access, UpstreamSource};
use crate::records::{CallLog, CallRecord};
use crate::request_id;
use crate::router::RouteMatch;
use crate::state::{GatewayState, Route, Shared};
use crate::tls::redirect::https_location;
use crate::tls::TlsInfo;
use crate::trace_context::TraceContext;
use crate::upgrade;
use crate::upgrade::extended_connect::{admit_connect, Connect, UpstreamKey};
use crate::upstream::Upstream;

/// What a connection knows about itself; shared by the requests on it.
pub struct ConnCtx {
    pub shared: Arc<Shared>,
    pub peer: SocketAddr,
    pub worker: usize,
    /// None on a plain connection.
    pub tls: Option<TlsInfo>,
}

pub async fn handle(req: Request<Incoming>, ctx: &ConnCtx) -> Response<ResponseBody> {
    let started = Instant::now();
    let state = ctx.shared.state.load_full();
    let (mut parts, body) = req.into_parts();
    let client_version = parts.version;

    // 1. accept (an HTTP/2 WebSocket handshake becomes its HTTP/1.1 GET here)
    let mut call = accept(&parts, ctx, started, &state);
    let admitted = admit_connect(&mut parts).and_then(|connect| {
        let head_bytes = check_limits(&parts, &state.limits)?;
        admit_target(&mut parts, state.http.path)?;
        Ok((connect == Connect::WebSocket, head_bytes))
    });
    // The call record shows the path that was routed (or, if refused, the one received).
    if state.record_calls {
        call.record.host = host_of(&parts).to_owned();
        call.record.path = parts.uri.path().to_owned();
    }
    let h2_websocket = match admitted {
        Ok((h2_websocket, head_bytes)) => {
            call.record.bytes_in = head_bytes;
            h2_websocket
        }
        Err(reject) => return refuse(reject, call, None),
    };

    // 2. route (by the path without ;parameters, which Java servers ignore)
    let routed_path = path_normalise::without_params(parts.uri.path());
    let route = match state
        .router
        .find(host_of(&parts), &routed_path, &parts.method)
    {
        RouteMatch::Found(i) => &state.routes[i],
        RouteMatch::MethodNotAllowed(allow) => {
            return refuse(Reject::MethodNotAllowed(allow), call, None)
        }
        RouteMatch::NotFound => return refuse(Reject::NoRoute, call, None),
    };
    call.record.route = Some(route.name.clone());
    call.metrics_slot = Some(route.metrics_slot);
    call.python_log = route.python.as_ref().is_some_and(|p| p.log);
    if let (Some(port), None) = (route.https_redirect_port, &ctx.tls) {
        let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        if let Some(location) = https_location(host_of(&parts), port, target) {
            let mut headers = http::HeaderMap::new();
            headers.insert(header::LOCATION, location);
            return answer(
                StatusCode::PERMANENT_REDIRECT,
                headers,
                Bytes::new(),
                call,
                None,
            );
        }
    }
    // Plugins that add headers to every answer of the route, refusals included (browsers
    // need cors's), keep what they need of the request now.
    let notes = Notes::take(&route.plugins, &parts.headers);
    let traceparent = state
        .config
        .tracing
        .as_ref()
        .filter(|t| t.response_header)
        .and(call.trace.as_ref())
        .map(TraceContext::traceparent);
    let ws = h2_websocket;
    let mut response = serve_route(route, &state, parts, body, call, ctx, client_version, ws).await;
    notes.respond(&route.plugins, response.headers_mut());
    if let Some(v) = traceparent {
        response
            .headers_mut()
            .insert(crate::trace_context::TRACEPARENT, v);
    }
    response
}

/// Phases 3 to 7, once the route is known.
#[allow(clippy::too_many_arguments)]
async fn serve_route(
    route: &Route,
    state: &GatewayState,
    mut parts: Parts,
    body: Incoming,
    mut call: CallLog,
    ctx: &ConnCtx,
    client_version: Version,
    h2_websocket: bool,
) -> Response<ResponseBody> {
    // A WebSocket handshake on a route that takes them (upgrade/), told before phase 3
    // strips its Upgrade headers.
    let websocket = route.websocket.filter(|_| {
        h2_websocket
            || upgrade::is_websocket_handshake(&parts.method, parts.version, &parts.headers)
    });
    // An HTTP/1.1 handshake elsewhere goes on as a plain GET; an extended CONNECT cannot (the
    // client waits for a tunnel, and any 2xx would open one).
    if h2_websocket && websocket.is_none() {
        let reject = Reject::BadRequest("this route does not take WebSockets");
        return refuse(reject, call, None);
    }
    let client_upgrade = websocket.and_then(|_| parts.extensions.remove::<OnUpgrade>());
    let ws_key = h2_websocket.then(UpstreamKey::generate);

    // 3. guard
    let client_ip = own_request_headers(
        &mut parts.headers,
        ctx.peer.ip(),
        &state.http,
        &route.inject_headers,
    );
    call.record.client_ip = Some(client_ip);
    let guarded = Guarded {
        method: &parts.method,
        headers: &parts.headers,
        client_ip,
    };
    for plugin in route.plugins.iter() {
        match plugin.guard(&guarded) {
            Verdict::Pass => {}
            Verdict::Refuse(reject) => return refuse(reject, call, None),
            Verdict::Answer(status, _) if h2_websocket && status.is_success() => {
                return refuse(Reject::plugin_error(NO_TUNNEL), call, None)
            }
            Verdict::Answer(status, headers) => {
                return answer(status, headers, Bytes::new(), call, None)
            }
        }
    }

    // 4. authenticate
    if let Err(reject) = authenticate(
        route,
        state,
        ctx.tls.as_ref(),
        &mut parts.headers,
        &mut call,
    ) {
        return refuse(reject, call, None);
    }

    // 5. rate_limit
    let limit = match rate_limit(route, ctx, &mut call) {
        Ok(decision) => decision,
        Err(reject) => return refuse(reject, call, None),
    };

    // 6. python access (only routes with Python plugins: access plugins see the whole
    //    request; response plugins see its head and the body streams on untouched)
    let python = route.python.as_ref();
    let mut chosen: Option<Arc<Upstream>> = None;
    let view_of = |parts: &Parts, call: &CallLog, body: Bytes, timeout_ms: u64| {
        python_phases::request_view(
            parts,
            &route.name,
            &call.record.request_id,
            call.record.consumer.clone(),
            client_ip,
            body,
            timeout_ms,
        )
    };
    let mut view = None;
    let (request_body, meter) = match python.filter(|p| p.access) {
        None => {
            if let Some(py) = python.filter(|p| p.response) {
                view = Some(view_of(&parts, &call, Bytes::new(), py.timeout_ms));
            }
            RequestBody::new(body, &state.limits)
        }
        Some(py) => {
            let whole = match python_phases::read_body(body, &state.limits).await {
                Ok(b) => b,
                Err(reject) => return refuse(reject, call, limit),
            };
            call.record.bytes_in += whole.len() as u64;
            let shown = view_of(&parts, &call, whole, py.timeout_ms);
            view = Some(shown.clone());
            let bridge = &ctx.shared.bridge;
            match python_phases::access(bridge, shown, &mut parts, &state.upstreams).await {
                Ok(Access::Proceed { body, upstream }) => {
                    chosen = upstream;
                    (RequestBody::full(body), None)
                }
                Ok(Access::Answer { status, .. }) if h2_websocket && status.is_success() => {
                    return refuse(Reject::plugin_error(NO_TUNNEL), call, limit)
                }
                Ok(Access::Answer {
                    status,
                    headers,
                    body,
                }) => return answer(status, headers, body, call, limit),
                Err(reject) => return refuse(reject, call, limit),
            }
        }
    };

    // 7. proxy
    let upstream = chosen.as_ref().unwrap_or(&route.upstream);
    // Without a Host to preserve (HTTP/1.0), the upstream gets the target's, as otherwise.
    let preserve_host = route.preserve_host && parts.headers.contains_key(header::HOST);
    let upstream_req = upstream_request(parts, request_body, route, ctx, &call);
    // From here the record counts the upload and names the target, however the call ends.
    call.upload = meter.clone();
    let tried = &mut call.record.upstream_addr;
    let (worker, pooled) = (ctx.worker, proxy::Connections::Pooled);
    let forwarded = match websocket {
        Some(_) => {
            let key = ws_key.as_ref();
            upgrade::forward(upstream, preserve_host, upstream_req, worker, tried, key).await
        }
        None => proxy::forward(upstream, preserve_host, upstream_req, worker, pooled, tried).await,
    };
    let forwarded = match forwarded {
        Ok(f) => f,
        Err(failure) => {
            // An upload the client broke off (too large, stalled, malformed) is its fault.
            let reject = match meter.as_ref().and_then(|m| m.client_fault()) {
                Some(client_fault) => client_fault,
                None => {
                    let stats = ctx.shared.stats.worker(ctx.worker);
                    stats.upstream_errors.fetch_add(1, Ordering::Relaxed);
                    failure.reject
                }
            };
            return refuse(reject, call, limit);
        }
    };

    if forwarded.response.status() == StatusCode::SWITCHING_PROTOCOLS {
        // Only a WebSocket handshake the route takes may switch; any other 101 would hand
        // the client a raw stream to an upstream that was never asked to upgrade.
        let (Some(ws), Some(client)) = (websocket, client_upgrade) else {
            return refuse(Reject::UpstreamUnavailable, call, limit);
        };
        // For an HTTP/2 client the gateway made the key, so it checks the answer.
        if ws_key.is_some_and(|k| !k.accepted_by(forwarded.response.headers())) {
            call.record.upstream_addr = Some(forwarded.conn.target.addr.clone());
            return refuse(Reject::UpstreamUnavailable, call, limit);
        }
        let id = call.record.request_id.clone();
        return upgrade::splice(forwarded, client, call, ws, h2_websocket, |h| {
            strip_hop_by_hop(h);
            set_request_id(h, &id);
            if let Some(d) = &limit {
                set_rate_limit_headers(h, d);
            }
        });
    }

    if h2_websocket && forwarded.response.status().is_success() {
        // Any 2xx but a 101 would open the client's tunnel with no WebSocket behind it.
        call.record.upstream_addr = Some(forwarded.conn.target.addr.clone());
        return refuse(Reject::UpstreamUnavailable, call, limit);
    }

    // 8. respond (9. log happens when the body below has been sent)
    let (mut head, upstream_body) = forwarded.response.into_parts();
    // Answer in the client's HTTP version, whatever the upstream spoke.
    head.version = client_version;
    strip_hop_by_hop(&mut head.headers);
    call.record.upstream_addr = Some(forwarded.conn.target.addr.clone());
    call.record.upstream_latency_us = forwarded.upstream_latency.as_micros() as u64;
    if call.grpc {
        // A response without a body carries its status in the headers (trailers-only).
        call.record.grpc_status = grpc::status_in(&head.headers).unwrap_or("");
        if client_version < Version::HTTP_2 {
            grpc::declare_trailers(&mut head.headers);
        }
    }
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
                Ok(_) if h2_websocket && head.status.is_success() => {
                    return refuse(Reject::plugin_error(NO_TUNNEL), call, limit)
                }
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

/// A success status on an extended CONNECT opens the client's tunnel (RFC 8441; hyper does
/// it), so only the upstream's WebSocket may answer one with 200.
const NO_TUNNEL: &str = "a plugin answered an HTTP/2 WebSocket handshake with a success status";

/// Host and path are filled in once the request target is settled (`handle`).
fn accept(parts: &Parts, ctx: &ConnCtx, started: Instant, state: &GatewayState) -> CallLog {
    let keep = state.record_calls;
    ctx.shared
        .stats
        .worker(ctx.worker)
        .requests
        .fetch_add(1, Ordering::Relaxed);
    let request_id = request_id::from_headers_or_new(&parts.headers);
    let mut record = CallRecord::begin(request_id, ctx.peer.ip(), ctx.tls.as_ref());
    record.method = Some(parts.method.clone());
    record.protocol = crate::conn::protocol_name(parts.version);
    let mut call = CallLog::new(record, started, ctx.shared.clone(), ctx.worker, keep);
    call.grpc = grpc::is_grpc(&parts.headers);
    let tracing = state.config.tracing.as_ref();
    let mut trace =
        TraceContext::from_headers(&parts.headers, || tracing.is_some_and(|t| t.sample(None)));
    if let Some(t) = tracing {
        // A caller's flag is followed (parent-based) or overruled by the ratio.
        if trace.parent_span_id.is_some() {
            trace.set_sampled(t.sample(Some(trace.sampled())));
        }
        call.export_span = t.exports() && trace.sampled();
    }
    call.trace = Some(trace);
    call
}

/// After `admit_target` the Host header is the request's one authority (an absolute-form
/// target's included); HTTP/1.0 may have none.
fn host_of(parts: &Parts) -> &str {
    parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
}
