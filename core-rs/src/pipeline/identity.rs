//! Phases 4 and 5: who is calling (key-auth, basic-auth or jwt) and whether they may, now
//! (the route's token bucket).

use std::borrow::Cow;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::header::{self, HeaderMap, HeaderValue};

use super::ownership::CONSUMER_HEADER;
use super::ConnCtx;
use crate::clock::now_ns;
use crate::config::RateLimitKey;
use crate::errors::Reject;
use crate::plugins::key_auth::{extract_key, hide_keys};
use crate::plugins::rate_limit::Decision;
use crate::records::CallLog;
use crate::state::{GatewayState, Route};

/// Phase 4, with the failed-authentication limit per client address around it
/// (plugins/auth_failures.rs): a blocked address is refused before its credential is read.
pub fn authenticate(
    route: &Route,
    state: &GatewayState,
    headers: &mut HeaderMap,
    call: &mut CallLog,
) -> Result<(), Reject> {
    let authenticated =
        route.key_auth.is_some() || route.basic_auth.is_some() || route.jwt.is_some();
    let guard = state.auth_failures.as_deref().filter(|_| authenticated);
    let client = call.record.client_ip;
    if let (Some(guard), Some(ip)) = (guard, client) {
        if let Err(blocked) = guard.admit(ip, now_ns()) {
            call.stats().auth_blocked.fetch_add(1, Ordering::Relaxed);
            return Err(blocked);
        }
    }
    let verdict = identify(route, state, headers, call);
    if let Err(Reject::Unauthorized(_) | Reject::BasicUnauthorized(_)) = verdict {
        call.stats().auth_failures.fetch_add(1, Ordering::Relaxed);
        if let (Some(guard), Some(ip)) = (guard, client) {
            guard.failed(ip, now_ns());
        }
    }
    verdict
}

fn identify(
    route: &Route,
    state: &GatewayState,
    headers: &mut HeaderMap,
    call: &mut CallLog,
) -> Result<(), Reject> {
    // The client's own X-Consumer-Username was dropped in phase 3 (ownership.rs).
    let name: Arc<str> = if let Some(key_auth) = &route.key_auth {
        let key = extract_key(headers).ok_or(Reject::Unauthorized(
            "missing API key: send it in the apikey or x-api-key header, or as Authorization: Bearer <key>",
        ))?;
        let consumer = state
            .keys
            .lookup(key)
            .ok_or(Reject::Unauthorized("invalid API key"))?;
        if key_auth.hide_credentials {
            hide_keys(headers);
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
        consumer
    } else {
        return Ok(());
    };
    if let Ok(v) = HeaderValue::from_str(&name) {
        headers.insert(CONSUMER_HEADER, v);
    }
    call.record.consumer = Some(name);
    Ok(())
}

pub fn rate_limit(
    route: &Route,
    ctx: &ConnCtx,
    call: &mut CallLog,
) -> Result<Option<Decision>, Reject> {
    let Some(limiter) = &route.rate_limit else {
        return Ok(None);
    };
    let key: Cow<str> = match limiter.key_kind() {
        RateLimitKey::Consumer => Cow::Borrowed(call.record.consumer.as_deref().unwrap_or("")),
        // The client address phase 3 settled on (the peer, or what its trusted proxy says).
        RateLimitKey::Ip => Cow::Owned(
            call.record
                .client_ip
                .map(|ip| ip.to_string())
                .unwrap_or_default(),
        ),
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
