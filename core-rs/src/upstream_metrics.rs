//! Per-upstream-target counters for /metrics: the upstream's answers by status class, the
//! attempts that got no answer by reason, and a histogram of the time to the answer's head.
//!
//! Counted where a target is tried (proxy.rs), so a call retried from a dead target to a
//! live one counts a failure on the first and an answer on the second. The status class is
//! the upstream's own (a Python response plugin may change what the client gets; the
//! route's counters, route_metrics.rs, have that).
//!
//! The same design as route_metrics.rs: each worker adds to its own cache line of the
//! target's slot (relaxed atomic adds, no lock, no allocation on the hot path); slots are
//! found when a config is compiled, keyed by (upstream name, target address) for the life
//! of the process, so a reload keeps every series counting. At most
//! `MAX_LABELLED_TARGETS` pairs get their own labels; later ones share
//! `upstream="_other",target="_other"` (upstream names never start with `_`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_utils::CachePadded;

use crate::route_metrics::{Histogram, HistogramSnapshot};

pub const MAX_LABELLED_TARGETS: usize = 1024;
pub const OTHER: &str = "_other";

/// Why an attempt on a target got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureReason {
    /// The connection was refused or reset while connecting.
    Connect = 0,
    ConnectTimeout = 1,
    Tls = 2,
    /// The upstream held the request past `read_timeout`.
    Timeout = 3,
    /// The connection closed before the answer's head.
    Closed = 4,
}

pub const FAILURE_REASONS: [&str; 5] = ["connect", "connect_timeout", "tls", "timeout", "closed"];

#[derive(Default)]
struct Counters {
    by_class: [AtomicU64; 5],
    failures: [AtomicU64; FAILURE_REASONS.len()],
    latency: Histogram,
}

#[derive(Default)]
struct Slot {
    workers: OnceLock<Box<[CachePadded<Counters>]>>,
}

pub struct UpstreamMetrics {
    workers: usize,
    /// Slot index -> (upstream, target); locked when a config is compiled and when read.
    names: Mutex<Vec<(Arc<str>, Arc<str>)>>,
    slots: Box<[Slot]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetSnapshot {
    pub upstream: Arc<str>,
    pub target: Arc<str>,
    pub by_class: [u64; 5],
    pub failures: [u64; FAILURE_REASONS.len()],
    pub latency: HistogramSnapshot,
}

impl UpstreamMetrics {
    pub fn new(workers: usize) -> UpstreamMetrics {
        UpstreamMetrics {
            workers: workers.max(1),
            names: Mutex::new(Vec::new()),
            slots: (0..=MAX_LABELLED_TARGETS)
                .map(|_| Slot::default())
                .collect(),
        }
    }

    /// The slot of `target` of `upstream`.
    pub fn slot_for(&self, upstream: &str, target: &str) -> u16 {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let found = names
            .iter()
            .position(|(u, t)| &**u == upstream && &**t == target);
        let index = match found {
            Some(i) => i,
            None if names.len() < MAX_LABELLED_TARGETS => {
                names.push((Arc::from(upstream), Arc::from(target)));
                names.len() - 1
            }
            None => MAX_LABELLED_TARGETS,
        };
        self.slots[index].workers.get_or_init(|| {
            (0..self.workers)
                .map(|_| CachePadded::new(Counters::default()))
                .collect()
        });
        index as u16
    }

    fn counters(&self, slot: u16, worker: usize) -> Option<&Counters> {
        let workers = self.slots.get(usize::from(slot))?.workers.get()?;
        Some(&workers[worker % workers.len()])
    }

    /// The target answered with `status` after `latency_us`.
    pub fn answered(&self, slot: u16, worker: usize, status: u16, latency_us: u64) {
        if let Some(c) = self.counters(slot, worker) {
            let class = usize::from(status / 100).clamp(1, 5) - 1;
            c.by_class[class].fetch_add(1, Ordering::Relaxed);
            c.latency.observe(latency_us);
        }
    }

    /// An attempt on the target got no answer.
    pub fn failed(&self, slot: u16, worker: usize, reason: FailureReason) {
        if let Some(c) = self.counters(slot, worker) {
            c.failures[reason as usize].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Every pair tried at least once (then `_other` if used), summed over the workers.
    pub fn snapshot(&self) -> Vec<TargetSnapshot> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let other: (Arc<str>, Arc<str>) = (Arc::from(OTHER), Arc::from(OTHER));
        let all = names
            .into_iter()
            .enumerate()
            .chain(std::iter::once((MAX_LABELLED_TARGETS, other)));
        all.filter_map(|(i, (upstream, target))| {
            let workers = self.slots[i].workers.get()?;
            let mut snap = TargetSnapshot {
                upstream,
                target,
                by_class: [0; 5],
                failures: [0; FAILURE_REASONS.len()],
                latency: HistogramSnapshot::default(),
            };
            for w in workers.iter() {
                for (total, c) in snap.by_class.iter_mut().zip(&w.by_class) {
                    *total += c.load(Ordering::Relaxed);
                }
                for (total, c) in snap.failures.iter_mut().zip(&w.failures) {
                    *total += c.load(Ordering::Relaxed);
                }
                w.latency.add_to(&mut snap.latency);
            }
            // A target never tried yet is left out (as a route without calls is).
            let tried = snap.by_class.iter().chain(&snap.failures).sum::<u64>();
            (tried > 0).then_some(snap)
        })
        .collect()
    }
}

/// An upstream's handle on the registry: one slot per target, in target order.
pub struct TargetSlots {
    pub registry: Arc<UpstreamMetrics>,
    pub slots: Box<[u16]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_answers_and_failures_per_target() {
        let m = UpstreamMetrics::new(2);
        let a1 = m.slot_for("a", "127.0.0.1:1");
        let a2 = m.slot_for("a", "127.0.0.1:2");
        let b1 = m.slot_for("b", "127.0.0.1:1");
        assert_eq!(m.slot_for("a", "127.0.0.1:1"), a1, "one slot per pair");
        assert_ne!(a1, b1, "the same address under two upstreams is two series");
        m.answered(a1, 0, 200, 1_000);
        m.answered(a1, 1, 502, 3_000);
        m.failed(a2, 1, FailureReason::Connect);
        m.failed(a2, 0, FailureReason::Timeout);
        let snap = m.snapshot();
        assert_eq!(snap.len(), 2, "b's target was never tried");
        assert_eq!((&*snap[0].upstream, &*snap[0].target), ("a", "127.0.0.1:1"));
        assert_eq!(snap[0].by_class, [0, 1, 0, 0, 1]);
        assert_eq!(snap[0].latency.buckets[0], 1);
        assert_eq!(snap[0].latency.sum_us, 4_000);
        assert_eq!(snap[1].failures, [1, 0, 0, 1, 0]);
        assert_eq!(snap[1].by_class, [0; 5]);
    }

    #[test]
    fn pairs_past_the_bound_fold_into_other() {
        let m = UpstreamMetrics::new(1);
        for i in 0..MAX_LABELLED_TARGETS + 3 {
            let slot = m.slot_for("u", &format!("h:{i}"));
            m.failed(slot, 0, FailureReason::Closed);
        }
        let snap = m.snapshot();
        assert_eq!(snap.len(), MAX_LABELLED_TARGETS + 1);
        let other = snap.last().unwrap();
        assert_eq!((&*other.upstream, &*other.target), (OTHER, OTHER));
        assert_eq!(other.failures[FailureReason::Closed as usize], 3);
    }
}
