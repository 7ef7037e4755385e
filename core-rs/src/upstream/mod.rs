//! Upstreams: their targets, how one is picked, and passive health (active: health.rs).

pub mod health;
pub mod pool;
mod shared;
mod tls;
pub mod transport;

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{Balance, ConfigError, UpstreamConfig};
use health::{ActiveCheck, ProbeState};
pub use pool::Target;
use transport::Transport;

use crate::upstream_metrics::{FailureReason, TargetSlots, UpstreamMetrics};

pub struct Upstream {
    pub name: String,
    pub targets: Vec<Arc<Target>>,
    pub balance: Balance,
    /// Per-target weights, in target order (all 1 for plain round robin).
    weights: Vec<u32>,
    /// Target indices in smooth weighted round-robin order (weights 1 for plain round robin).
    schedule: Vec<usize>,
    cursor: AtomicUsize,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
    pub retries: u32,
    pub max_fails: u32,
    pub fail_cooldown_ms: u64,
    /// Active health checks (health.rs); None: passive health only.
    pub active: Option<ActiveCheck>,
    /// Where its targets' tries are counted for /metrics (set when a config is compiled).
    pub metrics: Option<TargetSlots>,
}

/// Target ejection state lives on the target so that it survives config reloads.
#[derive(Default)]
pub struct Health {
    consecutive_fails: AtomicU32,
    ejected_until_ms: AtomicU64,
}

impl Health {
    pub fn is_ejected(&self, now_ms: u64) -> bool {
        self.ejected_until_ms.load(Ordering::Relaxed) > now_ms
    }
}

impl Upstream {
    /// `target_for` resolves an address reached by a transport to its shared target (so pools
    /// and health carry over reloads; `Target::pool_key` tells them apart).
    pub fn build(
        index: usize,
        cfg: &UpstreamConfig,
        mut target_for: impl FnMut(&str, &Arc<Transport>) -> Arc<Target>,
    ) -> Result<Upstream, ConfigError> {
        let field = |f: &str| format!("upstreams[{index}].{f}");
        let transport = Arc::new(Transport::build(index, cfg)?);
        if cfg.targets.is_empty() {
            return Err(ConfigError::new(
                field("targets"),
                "expected at least one target",
            ));
        }
        let mut weights = Vec::with_capacity(cfg.targets.len());
        let mut targets = Vec::with_capacity(cfg.targets.len());
        for (ti, t) in cfg.targets.iter().enumerate() {
            if !valid_addr(&t.addr) {
                return Err(ConfigError::new(
                    field(&format!("targets[{ti}]")),
                    format!("expected host:port, got {:?}", t.addr),
                ));
            }
            if t.weight == 0 {
                return Err(ConfigError::new(
                    field(&format!("targets[{ti}].weight")),
                    "expected a weight >= 1",
                ));
            }
            let weight = if cfg.balance == Balance::RoundRobin {
                1
            } else {
                t.weight
            };
            if let Err(why) = transport.server_name_for(&t.addr) {
                return Err(ConfigError::new(field(&format!("targets[{ti}]")), why));
            }
            weights.push(weight);
            targets.push(target_for(&t.addr, &transport));
        }
        let active = match &cfg.health_check {
            Some(c) => {
                c.validate(&field("health_check.active"))?;
                Some(ActiveCheck {
                    config: Arc::new(c.clone()),
                    probes: targets.iter().map(|_| Arc::default()).collect(),
                })
            }
            None => None,
        };
        Ok(Upstream {
            name: cfg.name.clone(),
            targets,
            balance: cfg.balance,
            schedule: smooth_weighted_schedule(&weights),
            weights,
            cursor: AtomicUsize::new(0),
            connect_timeout: Duration::from_millis(cfg.connect_timeout_ms.max(1)),
            read_timeout: Duration::from_millis(cfg.read_timeout_ms.max(1)),
            retries: cfg.retries,
            max_fails: cfg.max_fails.max(1),
            fail_cooldown_ms: cfg.fail_cooldown_ms,
            active,
            metrics: None,
        })
    }

    /// Take over the probe states of `previous` (the same upstream in the config before a
    /// reload) for the targets both have, so a reload neither forgets a target that is down
    /// nor starts it from scratch.
    pub fn keep_health_of(&mut self, previous: &Upstream) {
        let (Some(now), Some(before)) = (&mut self.active, &previous.active) else {
            return;
        };
        for (target, probe) in self.targets.iter().zip(now.probes.iter_mut()) {
            let old = previous.targets.iter().position(|t| t.addr == target.addr);
            if let Some(i) = old {
                *probe = before.probes[i].clone();
            }
        }
    }

    /// Count this upstream's tries in `registry` from now on, one series per target.
    pub fn count_into(&mut self, registry: &Arc<UpstreamMetrics>) {
        let slots = self.targets.iter();
        let slots = slots
            .map(|t| registry.slot_for(&self.name, &t.addr))
            .collect();
        self.metrics = Some(TargetSlots {
            registry: registry.clone(),
            slots,
        });
    }

    /// Target `i` answered with `status`, its head after `latency_us`.
    pub fn count_answer(&self, i: usize, worker: usize, status: u16, latency_us: u64) {
        if let Some(m) = &self.metrics {
            m.registry.answered(m.slots[i], worker, status, latency_us);
        }
    }

    /// An attempt on target `i` got no answer.
    pub fn count_failure(&self, i: usize, worker: usize, reason: FailureReason) {
        if let Some(m) = &self.metrics {
            m.registry.failed(m.slots[i], worker, reason);
        }
    }

    /// The probe state of target `i`, if this upstream has active checks.
    pub fn probe(&self, i: usize) -> Option<&Arc<ProbeState>> {
        self.active.as_ref().map(|a| &a.probes[i])
    }

    /// Whether target `i` takes requests: no active probe says it is down, and passive
    /// health has not ejected it.
    pub fn is_usable(&self, i: usize, now_ms: u64) -> bool {
        !self.targets[i].health.is_ejected(now_ms) && !self.probe(i).is_some_and(|p| p.is_down())
    }

    /// Pick a target not in `tried`, preferring ones that are not ejected.
    /// When every candidate is ejected we still try one: failing without trying helps nobody.
    pub fn pick(&self, tried: &[usize], now_ms: u64) -> Option<usize> {
        let usable = |i: usize| !tried.contains(&i);
        let healthy = |i: usize| usable(i) && self.is_usable(i, now_ms);
        let start = self.cursor.fetch_add(1, Ordering::Relaxed);
        match self.balance {
            Balance::RoundRobin | Balance::Weighted => {
                let n = self.schedule.len();
                let rotated = (0..n).map(|k| self.schedule[(start + k) % n]);
                rotated
                    .clone()
                    .find(|&i| healthy(i))
                    .or_else(|| rotated.clone().find(|&i| usable(i)))
            }
            Balance::LeastConn => {
                let n = self.targets.len();
                // Active requests per unit of weight, scaled to stay an integer.
                let load = |i: usize| {
                    (self.targets[i].active() as u64 * 1_000_000) / u64::from(self.weights[i])
                };
                let rotated = (0..n).map(|k| (start + k) % n);
                rotated
                    .clone()
                    .filter(|&i| healthy(i))
                    .min_by_key(|&i| load(i))
                    .or_else(|| rotated.filter(|&i| usable(i)).min_by_key(|&i| load(i)))
            }
        }
    }

    pub fn report_failure(&self, target: usize, now_ms: u64) {
        let h = &self.targets[target].health;
        let fails = h.consecutive_fails.fetch_add(1, Ordering::Relaxed) + 1;
        if fails >= self.max_fails && self.fail_cooldown_ms > 0 {
            h.ejected_until_ms
                .store(now_ms + self.fail_cooldown_ms, Ordering::Relaxed);
            h.consecutive_fails.store(0, Ordering::Relaxed);
        }
    }

    pub fn report_success(&self, target: usize) {
        let h = &self.targets[target].health;
        if h.consecutive_fails.load(Ordering::Relaxed) != 0 {
            h.consecutive_fails.store(0, Ordering::Relaxed);
        }
    }
}

fn valid_addr(addr: &str) -> bool {
    match addr.rsplit_once(':') {
        Some((host, port)) => !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0),
        None => false,
    }
}

/// nginx's smooth weighted round robin, unrolled once into a fixed order so that picking is one
/// atomic increment. Weights {a:5, b:1, c:1} give a a b a c a a: spread out, not a a a a a b c.
fn smooth_weighted_schedule(weights: &[u32]) -> Vec<usize> {
    let divisor = weights.iter().copied().fold(0, gcd).max(1);
    let reduced: Vec<i64> = weights.iter().map(|w| i64::from(w / divisor)).collect();
    let total: i64 = reduced.iter().sum();
    let mut current = vec![0i64; reduced.len()];
    let mut order = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, w) in current.iter_mut().zip(&reduced) {
            *c += w;
        }
        let best = (0..current.len())
            .max_by_key(|&i| (current[i], -(i as i64)))
            .unwrap();
        current[best] -= total;
        order.push(best);
    }
    order
}

fn gcd(a: u32, b: u32) -> u32 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetConfig;

    fn upstream(balance: Balance, weights: &[u32]) -> Upstream {
        let cfg = UpstreamConfig {
            name: "u".into(),
            targets: weights
                .iter()
                .enumerate()
                .map(|(i, w)| TargetConfig {
                    addr: format!("127.0.0.1:{}", 9000 + i),
                    weight: *w,
                })
                .collect(),
            balance,
            connect_timeout_ms: 1000,
            read_timeout_ms: 1000,
            retries: 2,
            max_fails: 2,
            fail_cooldown_ms: 5000,
            keepalive: 8,
            ..UpstreamConfig::default()
        };
        Upstream::build(0, &cfg, |addr, _| Arc::new(Target::plain(addr, 1, 8))).unwrap()
    }

    fn counts(u: &Upstream, n: usize) -> Vec<usize> {
        let mut c = vec![0; u.targets.len()];
        for _ in 0..n {
            c[u.pick(&[], 0).unwrap()] += 1;
        }
        c
    }

    #[test]
    fn schedule_is_smooth() {
        assert_eq!(
            smooth_weighted_schedule(&[5, 1, 1]),
            vec![0, 0, 1, 0, 2, 0, 0]
        );
        assert_eq!(smooth_weighted_schedule(&[2, 2]), vec![0, 1]);
    }

    #[test]
    fn round_robin_ignores_weights_and_weighted_follows_them() {
        assert_eq!(
            counts(&upstream(Balance::RoundRobin, &[3, 1]), 400),
            vec![200, 200]
        );
        assert_eq!(
            counts(&upstream(Balance::Weighted, &[3, 1]), 400),
            vec![300, 100]
        );
    }

    #[test]
    fn skips_tried_and_ejected_targets() {
        let u = upstream(Balance::RoundRobin, &[1, 1, 1]);
        for _ in 0..10 {
            assert_ne!(u.pick(&[1], 0), Some(1));
        }
        u.report_failure(0, 1000);
        assert!(!u.targets[0].health.is_ejected(1000), "max_fails is 2");
        u.report_failure(0, 1000);
        assert!(u.targets[0].health.is_ejected(1000));
        assert!((0..10).all(|_| u.pick(&[], 1000) != Some(0)));
        assert!(!u.targets[0].health.is_ejected(6001), "cooldown over");
        // Only ejected candidates left: still try one rather than fail unseen.
        assert_eq!(u.pick(&[1, 2], 1000), Some(0));
        assert_eq!(u.pick(&[0, 1, 2], 1000), None);
    }

    #[test]
    fn least_conn_prefers_the_idle_target() {
        let u = upstream(Balance::LeastConn, &[1, 1]);
        let _busy = u.targets[0].begin_request();
        assert!((0..10).all(|_| u.pick(&[], 0) == Some(1)));
    }

    #[test]
    fn bad_targets_name_the_field() {
        let mut cfg = UpstreamConfig {
            name: "u".into(),
            targets: vec![TargetConfig {
                addr: "nohost".into(),
                weight: 1,
            }],
            balance: Balance::Weighted,
            connect_timeout_ms: 1,
            read_timeout_ms: 1,
            retries: 0,
            max_fails: 1,
            fail_cooldown_ms: 0,
            keepalive: 1,
            ..UpstreamConfig::default()
        };
        let e = Upstream::build(3, &cfg, |a, _| Arc::new(Target::plain(a, 1, 1)))
            .err()
            .unwrap();
        assert_eq!(e.path, "upstreams[3].targets[0]");
        cfg.targets[0] = TargetConfig {
            addr: "127.0.0.1:80".into(),
            weight: 0,
        };
        let e = Upstream::build(3, &cfg, |a, _| Arc::new(Target::plain(a, 1, 1)))
            .err()
            .unwrap();
        assert_eq!(e.path, "upstreams[3].targets[0].weight");
    }
}
