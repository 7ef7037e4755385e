//! Phases 4 and 5: who is calling (key-auth, basic-auth, jwt or mtls) and whether they may, now
//! (the route's token bucket).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue};

use super::ownership::CONSUMER_NAME;
use super::ConnCtx;
use crate::clock::now_ns;
use crate::errors::Reject;
use crate::plugins::rate_limit::Decision;
use crate::plugins::{Authenticate, Caller, Consumer};
use crate::records::CallLog;
use crate::state::{GatewayState, Route};
use crate::tls::TlsInfo;

/// Phase 4, with the failed-authentication limit per client address around it
/// (plugins/auth_failures.rs): a blocked address is refused before its credential is read.
pub fn authenticate(
    route: &Route,
    state: &GatewayState,
    tls: Option<&TlsInfo>,
    headers: &mut HeaderMap,
    call: &mut CallLog,
) -> Result<(), Reject> {
    let Some(plugin) = route.plugins.authenticator() else {
        return Ok(());
    };
    let guard = state.auth_failures.as_deref();
    let client = call.record.client_ip;
    if let (Some(guard), Some(ip)) = (guard, client) {
        if let Err(blocked) = guard.admit(ip, now_ns()) {
            call.stats().auth_blocked.fetch_add(1, Ordering::Relaxed);
            return Err(blocked);
        }
    }
    let verdict = identify(plugin, state, tls, headers, call);
    if let Err(Reject::Unauthorized(_) | Reject::BasicUnauthorized(_)) = verdict {
        call.stats().auth_failures.fetch_add(1, Ordering::Relaxed);
        if let (Some(guard), Some(ip)) = (guard, client) {
            guard.failed(ip, now_ns());
        }
    }
    verdict
}

fn identify(
    plugin: &dyn Authenticate,
    state: &GatewayState,
    tls: Option<&TlsInfo>,
    headers: &mut HeaderMap,
    call: &mut CallLog,
) -> Result<(), Reject> {
    // The client's own X-Consumer-Username was dropped in phase 3 (ownership.rs).
    let name: Arc<str> = match plugin.authenticate_on(headers, &state.consumers, tls)? {
        Consumer::Known(index) => state.consumers.names[index].clone(),
        Consumer::Named(name) => name,
    };
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(&CONSUMER_NAME, v);
    }
    call.record.consumer = Some(name);
    Ok(())
}

/// Phase 5: a token from each of the route's limits; the first that is out refuses the
/// call. The last passed decision is what the response's rate-limit headers report.
pub fn rate_limit(
    route: &Route,
    ctx: &ConnCtx,
    call: &mut CallLog,
) -> Result<Option<Decision>, Reject> {
    let caller = Caller {
        consumer: call.record.consumer.as_deref(),
        client_ip: call.record.client_ip,
        route: &route.name,
    };
    let mut passed = None;
    let mut refused = None;
    for plugin in route.plugins.iter() {
        match plugin.limit(&caller) {
            Some(decision) if !decision.allowed => {
                refused = Some(decision);
                break;
            }
            Some(decision) => passed = Some(decision),
            None => {}
        }
    }
    let Some(decision) = refused else {
        return Ok(passed);
    };
    call.record.rate_limited = true;
    ctx.shared
        .stats
        .worker(ctx.worker)
        .rate_limited
        .fetch_add(1, Ordering::Relaxed);
    Err(Reject::RateLimited(decision))
}
