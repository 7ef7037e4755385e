//! Token-bucket rate limiting, implemented as GCRA (the "generic cell rate algorithm").
//!
//! GCRA is a token bucket that stores one number per key, the theoretical arrival time (TAT) of
//! the next request, so a check is a single compare-and-swap with no lock and no refill timer.
//! The bucket refills `rate` tokens per `per` and holds at most `burst` tokens.
//!
//! Responses say where the caller stands, in the IETF draft's fields
//! (draft-ietf-httpapi-ratelimit-headers) and the older X-RateLimit-* ones, which agree:
//! - `RateLimit-Policy: "ip";q=10;w=2`: the bucket holds q = `burst` requests and refills
//!   completely in w seconds (burst / rate, rounded up), so q/w is the sustained rate;
//! - `RateLimit: "ip";r=7;t=1`: r requests may be sent now (the tokens left, r <= q), and
//!   the bucket is full again in t seconds (t <= w);
//! - `X-RateLimit-Limit` = q, `X-RateLimit-Remaining` = r, `X-RateLimit-Reset` = t;
//! - a 429 has r=0 and `Retry-After`: the seconds until one token is back.

use std::borrow::{Borrow, Cow};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::cluster_limit::ClusterLimiter;
use super::{Build, Caller, Plugin};
use crate::clock::now_ns;
use crate::config::ConfigError;
use crate::text::push_u64;

/// `routes[].plugins.rate-limit` of the core config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub rate: u64,
    pub per_ms: u64,
    #[serde(default)]
    pub burst: Option<u64>,
    #[serde(default)]
    pub by: RateLimitKey,
    /// cluster: one budget for every node on `cluster.redis` (plugins/cluster_limit.rs).
    #[serde(default)]
    pub scope: Scope,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    #[default]
    Local,
    Cluster,
}

/// What a route's buckets are keyed by.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitKey {
    #[default]
    Consumer,
    Ip,
    Route,
}

impl RateLimitConfig {
    /// `field` is the config path of the plugin, for errors. (That limiting by consumer
    /// needs an auth plugin on the route is checked in Python:
    /// pygate/plugins/native/rate_limit.py.)
    pub fn validate(&self, field: &str) -> Result<(), ConfigError> {
        if self.rate == 0 {
            return Err(ConfigError::new(
                format!("{field}.rate"),
                "expected a rate >= 1",
            ));
        }
        if self.per_ms == 0 {
            return Err(ConfigError::new(
                format!("{field}.per"),
                "expected a period > 0",
            ));
        }
        if self.burst == Some(0) {
            return Err(ConfigError::new(
                format!("{field}.burst"),
                "expected a burst >= 1",
            ));
        }
        Ok(())
    }
}

/// A route's rate-limit plugin.
pub struct RateLimit {
    pub limiter: Arc<RateLimiter>,
    /// `scope: cluster`: decisions come from here; `limiter` is unused.
    pub cluster: Option<Arc<ClusterLimiter>>,
}

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    let config: RateLimitConfig = cx.parse()?;
    config.validate(&cx.field)?;
    let previous = cx.previous::<RateLimit>();
    if config.scope == Scope::Cluster {
        let Some(hub) = cx.cluster else {
            return Err(ConfigError::new(
                format!("{}.scope", cx.field),
                "scope: cluster needs cluster.redis (a Redis shared by the nodes)",
            ));
        };
        let cluster = match previous.and_then(|p| p.cluster.as_ref()) {
            Some(old) if old.same(&config, hub) => old.clone(),
            _ => ClusterLimiter::new(config.clone(), cx.route, hub.clone()),
        };
        return Ok(Box::new(RateLimit {
            limiter: Arc::new(RateLimiter::new(config)),
            cluster: Some(cluster),
        }));
    }
    // Same route, same limit: keep the buckets so a reload is not a free reset.
    let limiter = match previous {
        Some(old) if old.limiter.config == config && old.cluster.is_none() => old.limiter.clone(),
        _ => Arc::new(RateLimiter::new(config)),
    };
    Ok(Box::new(RateLimit {
        limiter,
        cluster: None,
    }))
}

impl Plugin for RateLimit {
    fn limit(&self, caller: &Caller<'_>) -> Option<Decision> {
        let key: Cow<str> = match self.limiter.key_kind() {
            RateLimitKey::Consumer => Cow::Borrowed(caller.consumer.unwrap_or("")),
            RateLimitKey::Ip => Cow::Owned(
                caller
                    .client_ip
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
            ),
            RateLimitKey::Route => Cow::Borrowed(caller.route),
        };
        if let Some(cluster) = &self.cluster {
            return Some(cluster.check(&key));
        }
        Some(self.limiter.check(&*key, now_ns()))
    }

    fn sweep(&self, now_ns: u64) {
        match &self.cluster {
            Some(cluster) => cluster.sweep(now_ns),
            None => self.limiter.sweep(now_ns),
        }
    }
}

/// Buckets by key: a route's consumer, IP or name (`Box<str>`), or a client address
/// (plugins/auth_failures.rs).
pub struct RateLimiter<K = Box<str>> {
    pub config: RateLimitConfig,
    /// Nanoseconds between two tokens.
    emission_ns: u64,
    /// How far the TAT may run ahead of now: `burst` tokens' worth of time.
    tolerance_ns: u64,
    /// The bucket's size (`burst`), the limit the headers report.
    capacity: u64,
    /// Seconds an empty bucket takes to fill (the policy's window), at least 1.
    window_secs: u64,
    buckets: DashMap<K, AtomicU64>,
    /// How many keys `buckets` holds (DashMap's own len() locks every shard).
    tracked: AtomicUsize,
}

/// The outcome of one check, with what the rate-limit headers report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size: the most requests that may be sent at once.
    pub limit: u64,
    /// Requests that may be sent now (whole tokens left), never more than `limit`.
    pub remaining: u64,
    /// Seconds until the bucket is full again.
    pub reset_secs: u64,
    /// Seconds until the next request would be allowed (only meaningful when refused).
    pub retry_after_secs: u64,
    /// Seconds an empty bucket takes to fill: `limit` per this many seconds is the rate.
    pub window_secs: u64,
    /// The policy's name in the draft's fields: what the bucket is keyed by.
    pub policy: &'static str,
    /// Refused because the cluster limit's Redis is unreachable and the route fails closed
    /// (503, not 429: the caller is not over any limit).
    pub cluster_down: bool,
}

static RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");
static RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
static X_RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("x-ratelimit-limit");
static X_RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("x-ratelimit-remaining");
static X_RATELIMIT_RESET: HeaderName = HeaderName::from_static("x-ratelimit-reset");

impl Decision {
    /// RateLimit-Policy, RateLimit and X-RateLimit-* (see the top of this file). On every
    /// limited request: names parsed once, values written without the formatting machinery.
    pub fn write_headers(&self, headers: &mut HeaderMap) {
        let field = |key: char, a: u64, b: u64| {
            let mut v = String::with_capacity(self.policy.len() + 48);
            v.push('"');
            v.push_str(self.policy);
            v.push_str("\";");
            v.push(key);
            v.push('=');
            push_u64(&mut v, a);
            v.push_str(if key == 'q' { ";w=" } else { ";t=" });
            push_u64(&mut v, b);
            HeaderValue::try_from(v)
        };
        if let Ok(v) = field('q', self.limit, self.window_secs) {
            headers.insert(&RATELIMIT_POLICY, v);
        }
        if let Ok(v) = field('r', self.remaining, self.reset_secs) {
            headers.insert(&RATELIMIT, v);
        }
        headers.insert(&X_RATELIMIT_LIMIT, HeaderValue::from(self.limit));
        headers.insert(&X_RATELIMIT_REMAINING, HeaderValue::from(self.remaining));
        headers.insert(&X_RATELIMIT_RESET, HeaderValue::from(self.reset_secs));
    }
}

fn ceil_secs(ns: u64) -> u64 {
    ns.div_ceil(1_000_000_000)
}

impl<K: Hash + Eq> RateLimiter<K> {
    pub fn new(config: RateLimitConfig) -> RateLimiter<K> {
        let rate = config.rate.max(1);
        let burst = config.burst.unwrap_or(rate).max(1);
        let per_ns = config.per_ms.max(1).saturating_mul(1_000_000);
        let emission_ns = (per_ns / rate).max(1);
        let tolerance_ns = emission_ns.saturating_mul(burst);
        RateLimiter {
            config,
            emission_ns,
            tolerance_ns,
            capacity: burst,
            window_secs: ceil_secs(tolerance_ns).max(1),
            buckets: DashMap::new(),
            tracked: AtomicUsize::new(0),
        }
    }

    fn policy(&self) -> &'static str {
        match self.config.by {
            RateLimitKey::Consumer => "consumer",
            RateLimitKey::Ip => "ip",
            RateLimitKey::Route => "route",
        }
    }

    pub fn key_kind(&self) -> RateLimitKey {
        self.config.by
    }

    /// Take one token for `key` at monotonic time `now_ns` (nanoseconds since any fixed origin).
    pub fn check<Q>(&self, key: &Q, now_ns: u64) -> Decision
    where
        K: Borrow<Q> + for<'q> From<&'q Q>,
        Q: Hash + Eq + ?Sized,
    {
        // The TAT is stored +1 so that 0 can mean "never seen" without a special case.
        let now = now_ns + 1;
        if let Some(slot) = self.buckets.get(key) {
            return self.check_slot(&slot, now);
        }
        let slot = self.buckets.entry(K::from(key)).or_insert_with(|| {
            self.tracked.fetch_add(1, Ordering::Relaxed);
            AtomicU64::new(0)
        });
        self.check_slot(&slot, now)
    }

    /// The refusal a `check` of `key` would get now, without taking a token (None: it
    /// would pass, or the key is unseen).
    pub fn peek<Q>(&self, key: &Q, now_ns: u64) -> Option<Decision>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let slot = self.buckets.get(key)?;
        let now = now_ns + 1;
        let tat = slot.load(Ordering::Acquire);
        let ahead = tat.max(now) + self.emission_ns - now;
        (ahead > self.tolerance_ns).then(|| self.refusal(tat, now, ahead))
    }

    pub fn contains<Q>(&self, key: &Q) -> bool
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        self.buckets.contains_key(key)
    }

    fn refusal(&self, tat: u64, now: u64, ahead: u64) -> Decision {
        Decision {
            allowed: false,
            limit: self.capacity,
            remaining: 0,
            reset_secs: ceil_secs(tat.max(now) - now),
            retry_after_secs: ceil_secs(ahead - self.tolerance_ns).max(1),
            window_secs: self.window_secs,
            policy: self.policy(),
            cluster_down: false,
        }
    }

    fn check_slot(&self, slot: &AtomicU64, now: u64) -> Decision {
        let mut tat = slot.load(Ordering::Acquire);
        loop {
            let new_tat = tat.max(now) + self.emission_ns;
            let ahead = new_tat - now;
            if ahead > self.tolerance_ns {
                return self.refusal(tat, now, ahead);
            }
            match slot.compare_exchange_weak(tat, new_tat, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => {
                    return Decision {
                        allowed: true,
                        limit: self.capacity,
                        remaining: (self.tolerance_ns - ahead) / self.emission_ns,
                        reset_secs: ceil_secs(ahead),
                        retry_after_secs: 0,
                        window_secs: self.window_secs,
                        policy: self.policy(),
                        cluster_down: false,
                    }
                }
                Err(actual) => tat = actual,
            }
        }
    }

    /// Forget keys whose bucket has refilled completely: they behave exactly like unseen keys,
    /// so this bounds memory (per-IP keys, say) without changing any decision.
    pub fn sweep(&self, now_ns: u64) {
        let now = now_ns + 1;
        self.buckets.retain(|_, tat| {
            let keep = tat.load(Ordering::Acquire) > now;
            if !keep {
                self.tracked.fetch_sub(1, Ordering::Relaxed);
            }
            keep
        });
    }

    pub fn tracked_keys(&self) -> usize {
        self.tracked.load(Ordering::Relaxed)
    }
}

/// How often idle buckets are swept.
pub const SWEEP_INTERVAL: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn limiter(rate: u64, per_ms: u64, burst: Option<u64>) -> RateLimiter {
        RateLimiter::new(RateLimitConfig {
            rate,
            per_ms,
            burst,
            by: RateLimitKey::Consumer,
            scope: Scope::Local,
        })
    }

    #[test]
    fn burst_then_refused_with_retry_after() {
        let l = limiter(10, 1000, Some(3));
        let t = 100 * SEC;
        let d: Vec<_> = (0..4).map(|_| l.check("a", t)).collect();
        assert!(d[..3].iter().all(|d| d.allowed));
        assert_eq!(
            d.iter().map(|d| d.remaining).collect::<Vec<_>>(),
            vec![2, 1, 0, 0]
        );
        assert!(!d[3].allowed);
        assert_eq!(d[3].retry_after_secs, 1);
        assert_eq!(d[3].limit, 3, "the limit is the bucket's size");
    }

    #[test]
    fn remaining_never_exceeds_the_limit_and_headers_agree() {
        // rate 5/s, burst 10: the bucket holds 10 and refills in 2 s.
        let l = limiter(5, 1000, Some(10));
        let t = 100 * SEC;
        for i in 0..40 {
            let d = l.check("a", t + i * SEC / 20);
            assert!(d.remaining <= d.limit && d.limit == 10, "{d:?}");
            assert!(d.reset_secs <= d.window_secs && d.window_secs == 2, "{d:?}");
        }
        let fresh = l.check("b", t);
        let mut h = HeaderMap::new();
        fresh.write_headers(&mut h);
        assert_eq!(h["ratelimit-policy"], "\"consumer\";q=10;w=2");
        assert_eq!(h["ratelimit"], "\"consumer\";r=9;t=1");
        assert_eq!(h["x-ratelimit-limit"], "10");
        assert_eq!(h["x-ratelimit-remaining"], "9");
        assert_eq!(h["x-ratelimit-reset"], "1");
    }

    #[test]
    fn refills_at_the_configured_rate() {
        let l = limiter(10, 1000, Some(1));
        let t = 100 * SEC;
        assert!(l.check("a", t).allowed);
        assert!(!l.check("a", t + SEC / 20).allowed);
        assert!(l.check("a", t + SEC / 10).allowed);
    }

    #[test]
    fn admits_rate_times_duration_plus_burst() {
        // Offer 1000 req/s for 10 s against 100/s with burst 20: exactly 20 + 100*10 pass.
        let l = limiter(100, 1000, Some(20));
        let start = 50 * SEC;
        let admitted = (0..10_000)
            .filter(|i| l.check("k", start + i * SEC / 1000).allowed)
            .count();
        assert!((1019..=1021).contains(&admitted), "admitted {admitted}");
    }

    #[test]
    fn keys_are_independent_and_swept_when_full() {
        let l = limiter(1, 1000, None);
        let t = 10 * SEC;
        assert!(l.check("a", t).allowed);
        assert!(!l.check("a", t).allowed);
        assert!(l.check("b", t).allowed);
        assert_eq!(l.tracked_keys(), 2);
        l.sweep(t + 2 * SEC);
        assert_eq!(l.tracked_keys(), 0);
        assert!(l.check("a", t + 2 * SEC).allowed);
    }

    #[test]
    fn concurrent_checks_never_over_admit() {
        let l = std::sync::Arc::new(limiter(1000, 1000, Some(500)));
        let t = 7 * SEC;
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let l = l.clone();
                std::thread::spawn(move || (0..1000).filter(|_| l.check("k", t).allowed).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total, 500);
    }
}
