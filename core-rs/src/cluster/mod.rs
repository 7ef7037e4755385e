//! Cluster-wide state on Redis (`cluster.redis` in the config): the hub that rate limits with
//! `scope: cluster` take their token leases from (plugins/cluster_limit.rs).
//!
//! Nothing here runs on the request path. One background thread with its own small tokio
//! runtime talks to Redis: it fills the leases that limiters ask for, registers this node's
//! heartbeat (so every node knows how many nodes share a limit), and watches whether Redis
//! answers. Every Redis call is bounded by `timeout_ms`; a call that fails or times out drops
//! the connection, and when a reconnect and a heartbeat fail too Redis is marked down (logged
//! once, counted), and the limiters apply the configured policy until a probe succeeds again.

mod connect;
pub mod scripts;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use serde::Deserialize;
use tokio::sync::Notify;

use crate::config::ConfigError;
use crate::plugins::cluster_limit::ClusterLimiter;
pub use connect::RedisTarget;

/// `cluster` of the core config (pygate/config/cluster.py compiles it).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// redis://, rediss://, redis+cluster://, rediss+cluster://, redis+sentinel://,
    /// rediss+sentinel:// (never with a password in it: that is `password`).
    pub redis: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
    pub timeout_ms: u64,
    pub on_redis_down: FailPolicy,
    /// Tokens a node takes from Redis at once per key; 0: see `Hub::lease_for`.
    pub lease: u64,
    pub heartbeat_ms: u64,
    /// This node's name in the heartbeat set (unique per process).
    pub node_id: String,
    /// Every key this gateway writes starts with it.
    pub key_prefix: String,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailPolicy {
    /// Each node limits alone to the cluster limit divided by the nodes it last knew of.
    FailOpen,
    /// Refused with 503 until Redis answers again.
    FailClosed,
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<RedisTarget, ConfigError> {
        if self.timeout_ms == 0 {
            return Err(ConfigError::new(
                "cluster.timeout",
                "expected a timeout > 0",
            ));
        }
        if self.heartbeat_ms == 0 {
            return Err(ConfigError::new(
                "cluster.heartbeat",
                "expected an interval > 0",
            ));
        }
        RedisTarget::parse(&self.redis).map_err(|e| ConfigError::new("cluster.redis", e))
    }
}

/// Counters /metrics and `pygate status` show (stats.rs).
#[derive(Default)]
pub struct ClusterStats {
    pub redis_up: AtomicBool,
    /// Transitions from up (or never connected) to down.
    pub redis_down_total: AtomicU64,
    /// Decisions made without Redis (the fail policy applied).
    pub fallback_decisions_total: AtomicU64,
    /// Lease refills done (one script call each).
    pub lease_refills_total: AtomicU64,
    pub nodes: AtomicU64,
}

pub static STATS: OnceLock<ClusterStats> = OnceLock::new();

pub fn stats() -> &'static ClusterStats {
    STATS.get_or_init(ClusterStats::default)
}

/// A lease a limiter wants filled: which limiter, which key.
pub struct Refill {
    pub limiter: Weak<ClusterLimiter>,
    pub key: Box<str>,
}

pub struct Hub {
    pub config: ClusterConfig,
    target: RedisTarget,
    up: AtomicBool,
    /// Nodes in the heartbeat set at the last heartbeat (1 before the first).
    nodes: AtomicU64,
    queue: SegQueue<Refill>,
    wake: Notify,
    started: OnceLock<()>,
    stop: AtomicBool,
    /// Logged once per transition, not per request.
    said_down: Mutex<Option<bool>>,
}

/// The hub for `config`: the previous state's when the config did not change (its leases
/// and connection carry over), else a new one (the old one stops when its state is dropped).
/// None: no `cluster` section. Nothing connects until `start`.
pub fn install(
    config: Option<&ClusterConfig>,
    previous: Option<&Arc<Hub>>,
) -> Result<Option<Arc<Hub>>, ConfigError> {
    let Some(config) = config else {
        return Ok(None);
    };
    let target = config.validate()?;
    if let Some(hub) = previous {
        if hub.config == *config {
            return Ok(Some(hub.clone()));
        }
    }
    Ok(Some(Arc::new(Hub {
        config: config.clone(),
        target,
        up: AtomicBool::new(true),
        nodes: AtomicU64::new(1),
        queue: SegQueue::new(),
        wake: Notify::new(),
        started: OnceLock::new(),
        stop: AtomicBool::new(false),
        said_down: Mutex::new(None),
    })))
}

impl Hub {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn nodes(&self) -> u64 {
        self.nodes.load(Ordering::Relaxed).max(1)
    }

    pub fn policy(&self) -> FailPolicy {
        self.config.on_redis_down
    }

    /// `lease: 0`: 1% of the burst or 20 ms of the sustained rate, whichever is more
    /// (a lease must outlast a Redis round trip under load), 1..=1000.
    pub fn lease_for(&self, burst: u64, per_second: u64) -> u64 {
        match self.config.lease {
            0 => (burst / 100).max(per_second / 50).clamp(1, 1000),
            n => n,
        }
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}{}", self.config.key_prefix, rest)
    }

    /// Ask the background thread to fill a lease (never waits).
    pub fn request(&self, refill: Refill) {
        self.queue.push(refill);
        self.wake.notify_one();
    }

    /// Stop the background thread (the state that had this hub was replaced by one without).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        self.wake.notify_one();
    }

    /// Start the background thread once (when a state with this hub starts serving).
    pub fn start(self: &Arc<Self>) {
        self.started.get_or_init(|| {
            let hub = self.clone();
            let spawned = std::thread::Builder::new()
                .name("pygate-cluster".into())
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("the cluster thread's runtime");
                    rt.block_on(hub.run());
                });
            if let Err(e) = spawned {
                eprintln!("pygate: cluster: cannot start the Redis thread: {e}");
            }
        });
    }

    fn set_up(&self, up: bool, why: &str) {
        self.up.store(up, Ordering::Release);
        let s = stats();
        s.redis_up.store(up, Ordering::Relaxed);
        let mut said = self.said_down.lock().unwrap_or_else(|e| e.into_inner());
        if *said == Some(!up) {
            return;
        }
        let first = said.is_none();
        *said = Some(!up);
        drop(said);
        if up {
            if !first {
                eprintln!(
                    "pygate: cluster: Redis at {} answers again; cluster rate limits resume",
                    self.target.display()
                );
            }
        } else {
            s.redis_down_total.fetch_add(1, Ordering::Relaxed);
            let policy = match self.policy() {
                FailPolicy::FailOpen => "fail_open: each node limits to its share of the limit",
                FailPolicy::FailClosed => "fail_closed: cluster-limited routes answer 503",
            };
            eprintln!(
                "pygate: cluster: Redis at {} is unreachable ({why}); {policy}",
                self.target.display()
            );
        }
    }

    async fn run(self: Arc<Self>) {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        let heartbeat = Duration::from_millis(self.config.heartbeat_ms);
        let mut conn: Option<connect::Conn> = None;
        let mut next_beat = tokio::time::Instant::now();
        let mut next_probe = tokio::time::Instant::now();
        // A call failed on a connection that worked: reconnect and beat once more before
        // calling it an outage. One reply later than `timeout` (a busy host deschedules
        // Redis or this thread) is not one; a dead Redis refuses the reconnect at once and
        // a hung one times out the confirming beat too. Limiters stay on their leases
        // meanwhile (bounded as in plugins/cluster_limit.rs), the request path never waits.
        let mut confirming = false;
        while !self.stop.load(Ordering::Acquire) {
            let now = tokio::time::Instant::now();
            if conn.is_none() && now >= next_probe {
                match tokio::time::timeout(timeout * 4, self.target.connect(&self.config)).await {
                    Ok(Ok(c)) => conn = Some(c),
                    Ok(Err(e)) => self.set_up(false, &e),
                    Err(_) => self.set_up(false, "connect timed out"),
                }
                if conn.is_none() {
                    confirming = false;
                }
                next_probe = now + Duration::from_millis(250);
                if conn.is_some() {
                    next_beat = now; // learn the node count at once
                }
            }
            if let Some(c) = conn.as_mut() {
                let ok = if now >= next_beat {
                    next_beat = now + heartbeat;
                    // The confirming beat gets the connect's bound.
                    let bound = if confirming { timeout * 4 } else { timeout };
                    self.beat(c, bound).await
                } else {
                    self.fill_leases(c, timeout).await
                };
                match ok {
                    Ok(()) => confirming = false,
                    Err(e) => {
                        conn = None;
                        self.drop_queue();
                        if confirming || !self.is_up() {
                            confirming = false;
                            self.set_up(false, &e);
                            next_probe = tokio::time::Instant::now() + Duration::from_millis(100);
                        } else {
                            confirming = true;
                            next_probe = tokio::time::Instant::now();
                        }
                        continue;
                    }
                }
            } else {
                self.drop_queue();
            }
            let wait = if conn.is_some() {
                next_beat.saturating_duration_since(tokio::time::Instant::now())
            } else {
                next_probe.saturating_duration_since(tokio::time::Instant::now())
            };
            if self.queue.is_empty() {
                let _ = tokio::time::timeout(wait, self.wake.notified()).await;
            }
        }
    }

    /// Refills asked for while Redis was down are forgotten (their limiters ask again).
    fn drop_queue(&self) {
        while let Some(r) = self.queue.pop() {
            if let Some(l) = r.limiter.upgrade() {
                l.refill_failed(&r.key);
            }
        }
    }

    async fn beat(&self, c: &mut connect::Conn, timeout: Duration) -> Result<(), String> {
        let ttl_ms = self.config.heartbeat_ms * 3;
        let key = self.key("nodes");
        let n = scripts::heartbeat(c, &key, &self.config.node_id, ttl_ms, timeout).await?;
        self.nodes.store(n.max(1), Ordering::Relaxed);
        stats().nodes.store(n.max(1), Ordering::Relaxed);
        self.set_up(true, "");
        Ok(())
    }

    async fn fill_leases(&self, c: &mut connect::Conn, timeout: Duration) -> Result<(), String> {
        while let Some(r) = self.queue.pop() {
            let Some(limiter) = r.limiter.upgrade() else {
                continue;
            };
            let Some(ask) = limiter.lease_request(&r.key) else {
                continue;
            };
            let key = self.key(&limiter.redis_key(&r.key));
            match scripts::take(c, &key, &ask, timeout).await {
                Ok(grant) => {
                    stats().lease_refills_total.fetch_add(1, Ordering::Relaxed);
                    limiter.refilled(&r.key, grant);
                    self.set_up(true, "");
                }
                Err(e) => {
                    limiter.refill_failed(&r.key);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}
