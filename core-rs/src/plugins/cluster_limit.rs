//! `rate-limit` with `scope: cluster`: one budget shared by every node on the same Redis.
//!
//! The request path never waits on Redis. Each node holds, per key, a small lease of tokens
//! taken from the shared GCRA bucket in Redis by one script call (cluster/scripts.rs); a check
//! takes a token from the lease (an atomic decrement) and, when the lease runs low, asks the
//! cluster thread to refill it in the background. When the lease is empty but Redis last said
//! the bucket had tokens, the node admits on credit (the lease goes negative, down to minus
//! one lease) and the next refill pays the debt first. So:
//! - over any window, the cluster admits at most the limit plus nodes × lease (tokens leased
//!   or owed at the window's edge), and over a long run exactly the limit;
//! - the headers report the shared bucket as Redis last told this node, plus this node's own
//!   lease: `remaining` can be off by what other nodes hold in their leases.
//!
//! Redis down: `fail_open` limits each node to its share (rate and burst divided by the
//! nodes in the last heartbeat), `fail_closed` refuses with 503. Either is counted.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use arc_swap::ArcSwap;
use dashmap::DashMap;

use super::rate_limit::{Decision, RateLimitConfig, RateLimitKey, RateLimiter};
use crate::clock::now_ns;
use crate::cluster::{self, FailPolicy, Hub, Refill};

struct Slot {
    /// Tokens leased and not used yet; negative: admitted on credit, owed to Redis.
    lease: AtomicI64,
    /// A refill is queued or in flight.
    pending: AtomicBool,
    /// Redis's last word on the shared bucket.
    left: AtomicU64,
    full_at_ns: AtomicU64,
    /// When Redis last said the bucket was empty: the next token's time (0: not empty).
    empty_until_ns: AtomicU64,
    last_used_ns: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            lease: AtomicI64::new(0),
            pending: AtomicBool::new(false),
            left: AtomicU64::new(u64::MAX),
            full_at_ns: AtomicU64::new(0),
            empty_until_ns: AtomicU64::new(0),
            last_used_ns: AtomicU64::new(0),
        }
    }
}

pub struct ClusterLimiter {
    pub config: RateLimitConfig,
    route: Box<str>,
    hub: Arc<Hub>,
    me: Weak<ClusterLimiter>,
    emission_ns: u64,
    tolerance_ns: u64,
    capacity: u64,
    window_secs: u64,
    lease: i64,
    slots: DashMap<Box<str>, Slot>,
    /// fail_open's limiter: (nodes it was divided by, the limiter).
    fallback: ArcSwap<(u64, RateLimiter)>,
}

fn share(config: &RateLimitConfig, nodes: u64) -> RateLimiter {
    let burst = config.burst.unwrap_or(config.rate);
    RateLimiter::new(RateLimitConfig {
        rate: (config.rate / nodes).max(1),
        burst: Some((burst / nodes).max(1)),
        ..config.clone()
    })
}

impl ClusterLimiter {
    pub fn new(config: RateLimitConfig, route: &str, hub: Arc<Hub>) -> Arc<ClusterLimiter> {
        let rate = config.rate.max(1);
        let burst = config.burst.unwrap_or(rate).max(1);
        let per_ns = config.per_ms.max(1).saturating_mul(1_000_000);
        let emission_ns = (per_ns / rate).max(1000);
        let tolerance_ns = emission_ns.saturating_mul(burst);
        let per_second = rate.saturating_mul(1000) / config.per_ms.max(1);
        let lease = hub.lease_for(burst, per_second).min(burst) as i64;
        let nodes = hub.nodes();
        Arc::new_cyclic(|me| ClusterLimiter {
            fallback: ArcSwap::from_pointee((nodes, share(&config, nodes))),
            config,
            route: route.into(),
            hub,
            me: me.clone(),
            emission_ns,
            tolerance_ns,
            capacity: burst,
            window_secs: tolerance_ns.div_ceil(1_000_000_000).max(1),
            lease,
            slots: DashMap::new(),
        })
    }

    pub fn same(&self, config: &RateLimitConfig, hub: &Arc<Hub>) -> bool {
        self.config == *config && Arc::ptr_eq(&self.hub, hub)
    }

    fn policy(&self) -> &'static str {
        match self.config.by {
            RateLimitKey::Consumer => "consumer",
            RateLimitKey::Ip => "ip",
            RateLimitKey::Route => "route",
        }
    }

    /// The key's bucket in Redis (after the hub's prefix): route, what it is keyed by, the
    /// limit (a changed limit starts a new bucket, as a local one does), the key.
    pub fn redis_key(&self, key: &str) -> String {
        format!(
            "rl:{}:{}:{}/{}/{}:{}",
            self.route,
            self.policy(),
            self.config.rate,
            self.config.per_ms,
            self.capacity,
            key
        )
    }

    pub fn check(&self, key: &str) -> Decision {
        let now = now_ns();
        if !self.hub.is_up() {
            return self.without_redis(key, now);
        }
        if let Some(slot) = self.slots.get(key) {
            return self.take(key, &slot, now);
        }
        let slot = self.slots.entry(key.into()).or_insert_with(Slot::new);
        self.take(key, &slot, now)
    }

    fn take(&self, key: &str, slot: &Slot, now: u64) -> Decision {
        slot.last_used_ns.store(now, Ordering::Relaxed);
        let empty_until = slot.empty_until_ns.load(Ordering::Acquire);
        // Credit only while Redis did not say the bucket is empty.
        let floor = if empty_until > now { 0 } else { -self.lease };
        let mut lease = slot.lease.load(Ordering::Acquire);
        let allowed = loop {
            if lease <= floor {
                break false;
            }
            match slot.lease.compare_exchange_weak(
                lease,
                lease - 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    lease -= 1;
                    break true;
                }
                Err(actual) => lease = actual,
            }
        };
        if lease * 2 <= self.lease && empty_until <= now {
            self.ask_refill(key, slot);
        }
        let left = slot.left.load(Ordering::Relaxed);
        let left = if left == u64::MAX {
            self.capacity
        } else {
            left
        };
        let remaining = left.saturating_add(lease.max(0) as u64).min(self.capacity);
        let full_at = slot.full_at_ns.load(Ordering::Relaxed);
        let reset_secs = full_at.saturating_sub(now).div_ceil(1_000_000_000);
        Decision {
            allowed,
            limit: self.capacity,
            remaining: if allowed { remaining } else { 0 },
            reset_secs: reset_secs.min(self.window_secs),
            retry_after_secs: empty_until
                .saturating_sub(now)
                .div_ceil(1_000_000_000)
                .max(1),
            window_secs: self.window_secs,
            policy: self.policy(),
            cluster_down: false,
        }
    }

    /// Not while Redis said the bucket is empty (asking before the next token only costs
    /// Redis a call per request).
    fn ask_refill(&self, key: &str, slot: &Slot) {
        if slot.pending.swap(true, Ordering::AcqRel) {
            return;
        }
        self.hub.request(Refill {
            limiter: self.me.clone(),
            key: key.into(),
        });
    }

    /// What the cluster thread asks Redis for: the lease topped up, debt first.
    pub fn lease_request(&self, key: &str) -> Option<cluster::scripts::Ask> {
        let slot = self.slots.get(key)?;
        let lease = slot.lease.load(Ordering::Acquire);
        let want = (self.lease - lease).max(0) as u64;
        if want == 0 {
            slot.pending.store(false, Ordering::Release);
            return None;
        }
        Some(cluster::scripts::Ask {
            emission_us: (self.emission_ns / 1000).max(1),
            tolerance_us: (self.tolerance_ns / 1000).max(1),
            want,
        })
    }

    pub fn refilled(&self, key: &str, grant: cluster::scripts::Grant) {
        let Some(slot) = self.slots.get(key) else {
            return;
        };
        let now = now_ns();
        slot.lease.fetch_add(grant.granted as i64, Ordering::AcqRel);
        slot.left.store(grant.left, Ordering::Relaxed);
        slot.full_at_ns
            .store(now + grant.full_in_us * 1000, Ordering::Relaxed);
        let empty = grant.left == 0 && grant.next_token_in_us > 0;
        slot.empty_until_ns.store(
            if empty {
                now + grant.next_token_in_us * 1000
            } else {
                0
            },
            Ordering::Release,
        );
        slot.pending.store(false, Ordering::Release);
        // Still in debt with tokens coming: ask again when the next one is due (the next
        // check does, since empty_until has passed by then).
    }

    pub fn refill_failed(&self, key: &str) {
        if let Some(slot) = self.slots.get(key) {
            slot.pending.store(false, Ordering::Release);
        }
    }

    fn without_redis(&self, key: &str, now: u64) -> Decision {
        cluster::stats()
            .fallback_decisions_total
            .fetch_add(1, Ordering::Relaxed);
        match self.hub.policy() {
            FailPolicy::FailClosed => Decision {
                allowed: false,
                limit: self.capacity,
                remaining: 0,
                reset_secs: 1,
                retry_after_secs: 1,
                window_secs: self.window_secs,
                policy: self.policy(),
                cluster_down: true,
            },
            FailPolicy::FailOpen => {
                let nodes = self.hub.nodes();
                if self.fallback.load().0 != nodes {
                    self.fallback
                        .store(Arc::new((nodes, share(&self.config, nodes))));
                }
                self.fallback.load().1.check(key, now)
            }
        }
    }

    /// Forget keys not used for a full window (their lease goes back unused: at most one
    /// lease per key, counted in the accuracy above).
    pub fn sweep(&self, now: u64) {
        let idle = self.tolerance_ns.max(10_000_000_000);
        self.slots.retain(|_, s| {
            now.saturating_sub(s.last_used_ns.load(Ordering::Relaxed)) < idle
                || s.pending.load(Ordering::Acquire)
        });
        self.fallback.load().1.sweep(now);
    }
}
