//! Failed authentications per client address (`limits.auth_failures`), fail2ban-style.
//!
//! Every failed key-auth, basic-auth or jwt authentication takes a token from its client
//! address's bucket (GCRA, as rate_limit.rs: `burst` failures at once, then `rate` per
//! `per`). While the bucket is empty the address gets 429 `auth_blocked` with Retry-After
//! on every authenticated route, *before* its credential is looked at: a correct guess then
//! looks like every other guess, and a correct key from that address waits too. Routes
//! without authentication are not affected. Successes cost nothing.
//!
//! Memory is bounded: IPv6 clients are keyed by their /64 (what one host or customer
//! usually gets, so rotating addresses inside it does not help), and at most `max_tracked`
//! addresses are kept; past that, new addresses share one overflow bucket until the sweep
//! (every 10 s) forgets the addresses whose bucket is full again.

use std::net::IpAddr;

use http::header::{HeaderMap, HeaderValue, RETRY_AFTER};
use http::StatusCode;
use serde::Deserialize;

use super::rate_limit::{RateLimitConfig, RateLimitKey, RateLimiter};
use crate::errors::{PluginRefusal, Reject};

/// `limits.auth_failures` of the core config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AuthFailureConfig {
    pub rate: u64,
    pub per_ms: u64,
    pub burst: u64,
    /// Client addresses tracked at most; past that they share one bucket.
    #[serde(default = "default_auth_failure_addresses")]
    pub max_tracked: usize,
}

fn default_auth_failure_addresses() -> usize {
    65_536
}

/// A client address as a bucket key: IPv4 as is, IPv6 cut to its /64.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AddressKey(u128);

/// Shared by the addresses that arrive once the table is full.
const OVERFLOW: AddressKey = AddressKey(u128::MAX);

impl AddressKey {
    pub fn of(ip: IpAddr) -> AddressKey {
        match ip.to_canonical() {
            IpAddr::V4(v4) => AddressKey(u128::from(v4.to_ipv6_mapped())),
            IpAddr::V6(v6) => AddressKey(u128::from(v6) & !u128::from(u64::MAX)),
        }
    }
}

impl From<&AddressKey> for AddressKey {
    fn from(key: &AddressKey) -> AddressKey {
        *key
    }
}

pub struct AuthFailures {
    pub config: AuthFailureConfig,
    limiter: RateLimiter<AddressKey>,
}

impl AuthFailures {
    pub fn new(config: AuthFailureConfig) -> AuthFailures {
        let limiter = RateLimiter::new(RateLimitConfig {
            rate: config.rate.max(1),
            per_ms: config.per_ms.max(1),
            burst: Some(config.burst.max(1)),
            by: RateLimitKey::Ip,
            scope: super::rate_limit::Scope::Local,
        });
        AuthFailures { config, limiter }
    }

    /// Refused with 429 while `ip` has no failed authentications left. Costs one atomic
    /// load when no address has failed lately (the usual case).
    pub fn admit(&self, ip: IpAddr, now_ns: u64) -> Result<(), Reject> {
        if self.limiter.tracked_keys() == 0 {
            return Ok(());
        }
        let key = AddressKey::of(ip);
        let refusal = match self.limiter.peek(&key, now_ns) {
            Some(refusal) => Some(refusal),
            // Untracked addresses share the overflow bucket only while the table is full.
            None if self.full() && !self.limiter.contains(&key) => {
                self.limiter.peek(&OVERFLOW, now_ns)
            }
            None => None,
        };
        match refusal {
            None => Ok(()),
            Some(refusal) => Err(blocked(refusal.retry_after_secs)),
        }
    }

    /// Count one failed authentication from `ip`.
    pub fn failed(&self, ip: IpAddr, now_ns: u64) {
        let key = AddressKey::of(ip);
        let key = if self.full() && !self.limiter.contains(&key) {
            OVERFLOW
        } else {
            key
        };
        self.limiter.check(&key, now_ns);
    }

    fn full(&self) -> bool {
        self.limiter.tracked_keys() >= self.config.max_tracked
    }

    pub fn sweep(&self, now_ns: u64) {
        self.limiter.sweep(now_ns);
    }

    pub fn tracked_addresses(&self) -> usize {
        self.limiter.tracked_keys()
    }
}

fn blocked(retry_after_secs: u64) -> Reject {
    let mut headers = HeaderMap::new();
    headers.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    // A refusal with its own status, kind and headers: the shape plugins refuse with.
    Reject::Plugin(Box::new(PluginRefusal {
        status: StatusCode::TOO_MANY_REQUESTS,
        kind: "auth_blocked",
        message: format!(
            "too many failed authentications from this address; retry in {retry_after_secs} s"
        ),
        headers,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    fn guard(burst: u64, max_tracked: usize) -> AuthFailures {
        AuthFailures::new(AuthFailureConfig {
            rate: 1,
            per_ms: 1000,
            burst,
            max_tracked,
        })
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_after_burst_failures_and_recovers() {
        let g = guard(3, 100);
        let t = 10 * SEC;
        assert!(g.admit(ip("10.0.0.1"), t).is_ok());
        for _ in 0..3 {
            g.failed(ip("10.0.0.1"), t);
        }
        let Err(Reject::Plugin(refusal)) = g.admit(ip("10.0.0.1"), t) else {
            panic!("blocked after 3 failures")
        };
        assert_eq!(refusal.kind, "auth_blocked");
        assert_eq!(refusal.headers[RETRY_AFTER], "1");
        assert!(g.admit(ip("10.0.0.2"), t).is_ok(), "per address");
        assert!(g.admit(ip("10.0.0.1"), t + SEC).is_ok(), "a token is back");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_v4_is_v4() {
        assert_eq!(
            AddressKey::of(ip("2001:db8:1:2:aaaa::1")),
            AddressKey::of(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"))
        );
        assert_ne!(
            AddressKey::of(ip("2001:db8:1:2::1")),
            AddressKey::of(ip("2001:db8:1:3::1"))
        );
        assert_eq!(
            AddressKey::of(ip("::ffff:10.0.0.1")),
            AddressKey::of(ip("10.0.0.1"))
        );
        assert_ne!(AddressKey::of(ip("10.0.0.1")), OVERFLOW);
    }

    #[test]
    fn rotating_addresses_cannot_grow_the_table() {
        let g = guard(2, 50);
        let t = 10 * SEC;
        for i in 0..10_000u32 {
            let addr = std::net::Ipv6Addr::from((0x2001_0db8u128 << 96) | (u128::from(i) << 64));
            g.failed(IpAddr::V6(addr), t);
        }
        assert!(g.tracked_addresses() <= 51, "{}", g.tracked_addresses());
        // The overflow bucket is spent: new addresses that fail are held back together,
        // while the addresses in the table keep their own count.
        assert!(g.admit(ip("2001:db8:ffff::1"), t).is_err());
        g.sweep(t + 5 * SEC);
        assert_eq!(g.tracked_addresses(), 0, "full buckets are forgotten");
        assert!(g.admit(ip("2001:db8:ffff::1"), t + 5 * SEC).is_ok());
    }
}
