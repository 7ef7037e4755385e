//! Live counters. Each worker thread writes its own cache line; readers add them up.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use crossbeam_utils::CachePadded;

#[derive(Default)]
pub struct WorkerStats {
    pub requests: AtomicU64,
    pub by_class: [AtomicU64; 5],
    pub rate_limited: AtomicU64,
    pub upstream_errors: AtomicU64,
    /// Failed key-auth, basic-auth and jwt authentications (401s).
    pub auth_failures: AtomicU64,
    /// Calls refused because their address failed to authenticate too often (429).
    pub auth_blocked: AtomicU64,
    pub connections_active: AtomicI64,
    /// TLS connections closed before or during the handshake (timeout, alert, plain HTTP).
    pub tls_handshake_failures: AtomicU64,
}

pub struct Stats {
    workers: Box<[CachePadded<WorkerStats>]>,
    pub reloads: AtomicU64,
}

impl Stats {
    pub fn new(workers: usize) -> Stats {
        Stats {
            workers: (0..workers.max(1))
                .map(|_| CachePadded::default())
                .collect(),
            reloads: AtomicU64::new(0),
        }
    }

    pub fn worker(&self, index: usize) -> &WorkerStats {
        &self.workers[index % self.workers.len()]
    }

    fn sum(&self, f: impl Fn(&WorkerStats) -> u64) -> u64 {
        self.workers.iter().map(|w| f(w)).sum()
    }

    /// (name, value) pairs in the order `pygate status` shows them.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut out = vec![("requests_total", self.sum(|w| get(&w.requests)))];
        for (i, name) in [
            "responses_1xx",
            "responses_2xx",
            "responses_3xx",
            "responses_4xx",
            "responses_5xx",
        ]
        .into_iter()
        .enumerate()
        {
            out.push((name, self.sum(|w| get(&w.by_class[i]))));
        }
        out.push(("rate_limited_total", self.sum(|w| get(&w.rate_limited))));
        out.push((
            "upstream_errors_total",
            self.sum(|w| get(&w.upstream_errors)),
        ));
        out.push(("auth_failures_total", self.sum(|w| get(&w.auth_failures))));
        out.push(("auth_blocked_total", self.sum(|w| get(&w.auth_blocked))));
        out.push((
            "connections_active",
            self.sum(|w| w.connections_active.load(Ordering::Relaxed).max(0) as u64),
        ));
        out.push((
            "tls_handshake_failures_total",
            self.sum(|w| get(&w.tls_handshake_failures)),
        ));
        out.push(("reloads_total", get(&self.reloads)));
        // Cluster-wide limits (cluster/mod.rs): zeros on a node without cluster.redis.
        let c = crate::cluster::stats();
        out.push((
            "cluster_redis_up",
            u64::from(c.redis_up.load(Ordering::Relaxed)),
        ));
        out.push(("cluster_redis_down_total", get(&c.redis_down_total)));
        out.push((
            "cluster_fallback_decisions_total",
            get(&c.fallback_decisions_total),
        ));
        out.push(("cluster_lease_refills_total", get(&c.lease_refills_total)));
        out.push(("cluster_nodes", get(&c.nodes)));
        out
    }
}

impl WorkerStats {
    pub fn count_response(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
    }
}
