//! Per-route counters for /metrics: responses by status class, and histograms of the total
//! and the upstream latency.
//!
//! Cheap on the hot path: a finished call adds to its worker's own cache line of its
//! route's slot (a few relaxed atomic adds; no lock, no allocation). The slot is found when
//! a config is compiled (`slot_for`), not per request.
//!
//! Bounded and stable across reloads: slots are keyed by route name for the life of the
//! process, and carried from one config to the next, so a reload keeps every series
//! counting. A renamed route starts a new series from zero; a removed or renamed one keeps
//! its last values (counters never go back) until the process restarts. At most
//! `MAX_LABELLED_ROUTES` names get their own `route` label over the process's life; later
//! ones are counted together under `route="_other"` (route names never start with `_`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use crossbeam_utils::CachePadded;

pub const MAX_LABELLED_ROUTES: usize = 256;
pub const OTHER_ROUTES: &str = "_other";

/// Histogram bucket upper bounds in microseconds (1 ms .. 60 s; +Inf beyond).
pub const LATENCY_BOUNDS_US: [u64; 15] = [
    1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    5_000_000, 10_000_000, 30_000_000, 60_000_000,
];

#[derive(Default)]
pub(crate) struct Histogram {
    /// Not cumulative: bucket i counts observations in (bound[i-1], bound[i]]; the last
    /// one counts those above every bound.
    buckets: [AtomicU64; LATENCY_BOUNDS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    pub(crate) fn observe(&self, us: u64) {
        let i = LATENCY_BOUNDS_US.partition_point(|&bound| bound < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    pub(crate) fn add_to(&self, out: &mut HistogramSnapshot) {
        for (total, b) in out.buckets.iter_mut().zip(&self.buckets) {
            *total += b.load(Ordering::Relaxed);
        }
        out.sum_us += self.sum_us.load(Ordering::Relaxed);
    }
}

#[derive(Default)]
struct Counters {
    by_class: [AtomicU64; 5],
    latency: Histogram,
    upstream_latency: Histogram,
}

/// One route name's counters, one cache line group per worker, made when first assigned.
#[derive(Default)]
struct Slot {
    workers: OnceLock<Box<[CachePadded<Counters>]>>,
}

pub struct RouteMetrics {
    workers: usize,
    /// Slot index -> route name; `_other` is the slot after the labelled ones. Locked only
    /// when a config is compiled and when /metrics is read.
    names: Mutex<Vec<Arc<str>>>,
    slots: Box<[Slot]>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistogramSnapshot {
    pub buckets: [u64; LATENCY_BOUNDS_US.len() + 1],
    pub sum_us: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteSnapshot {
    pub route: Arc<str>,
    pub by_class: [u64; 5],
    pub latency: HistogramSnapshot,
    pub upstream_latency: HistogramSnapshot,
}

impl RouteMetrics {
    pub fn new(workers: usize) -> RouteMetrics {
        RouteMetrics {
            workers: workers.max(1),
            names: Mutex::new(Vec::new()),
            slots: (0..=MAX_LABELLED_ROUTES).map(|_| Slot::default()).collect(),
        }
    }

    /// The slot of `route` (its own while fewer than MAX_LABELLED_ROUTES names have one).
    pub fn slot_for(&self, route: &str) -> u16 {
        let mut names = self.names.lock().unwrap_or_else(|e| e.into_inner());
        let index = match names.iter().position(|n| &**n == route) {
            Some(i) => i,
            None if names.len() < MAX_LABELLED_ROUTES => {
                names.push(Arc::from(route));
                names.len() - 1
            }
            None => MAX_LABELLED_ROUTES,
        };
        self.slots[index].workers.get_or_init(|| {
            (0..self.workers)
                .map(|_| CachePadded::new(Counters::default()))
                .collect()
        });
        index as u16
    }

    /// Count one finished call (`upstream_us`: None when no upstream answered).
    pub fn observe(
        &self,
        slot: u16,
        worker: usize,
        status: u16,
        latency_us: u64,
        upstream_us: Option<u64>,
    ) {
        let Some(workers) = self
            .slots
            .get(usize::from(slot))
            .and_then(|s| s.workers.get())
        else {
            return;
        };
        let c = &workers[worker % workers.len()];
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        c.by_class[class].fetch_add(1, Ordering::Relaxed);
        c.latency.observe(latency_us);
        if let Some(us) = upstream_us {
            c.upstream_latency.observe(us);
        }
    }

    /// Every route name seen so far (then `_other` if used), summed over the workers.
    pub fn snapshot(&self) -> Vec<RouteSnapshot> {
        let names = self.names.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let other: Arc<str> = Arc::from(OTHER_ROUTES);
        let labelled = names.into_iter().enumerate();
        let all = labelled.chain(std::iter::once((MAX_LABELLED_ROUTES, other)));
        all.filter_map(|(i, route)| {
            let workers = self.slots[i].workers.get()?;
            let mut snap = RouteSnapshot {
                route,
                by_class: [0; 5],
                latency: HistogramSnapshot::default(),
                upstream_latency: HistogramSnapshot::default(),
            };
            for w in workers.iter() {
                for (total, c) in snap.by_class.iter_mut().zip(&w.by_class) {
                    *total += c.load(Ordering::Relaxed);
                }
                w.latency.add_to(&mut snap.latency);
                w.upstream_latency.add_to(&mut snap.upstream_latency);
            }
            // A name no call was counted for (a route without traffic yet, or one of a
            // refused config) is left out.
            let counted: u64 = snap.by_class.iter().sum();
            (counted > 0).then_some(snap)
        })
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_route_class_and_latency_bucket() {
        let m = RouteMetrics::new(2);
        let a = m.slot_for("a");
        let b = m.slot_for("b");
        assert_eq!(m.slot_for("a"), a, "one slot per name");
        m.observe(a, 0, 200, 1_000, Some(400));
        m.observe(a, 1, 503, 2_000_000, None);
        m.observe(b, 1, 404, 70_000_000, Some(1));
        let snap = m.snapshot();
        assert_eq!(snap.len(), 2);
        assert_eq!(&*snap[0].route, "a");
        assert_eq!(snap[0].by_class, [0, 1, 0, 0, 1]);
        assert_eq!(snap[0].latency.buckets[0], 1, "1 ms is in le=0.001");
        assert_eq!(snap[0].latency.buckets[10], 1, "2 s is in le=2.5");
        assert_eq!(snap[0].latency.sum_us, 2_001_000);
        assert_eq!(snap[0].upstream_latency.buckets.iter().sum::<u64>(), 1);
        assert_eq!(
            snap[1].latency.buckets[15], 1,
            "above every bound: +Inf only"
        );
    }

    #[test]
    fn names_past_the_bound_fold_into_other() {
        let m = RouteMetrics::new(1);
        for i in 0..MAX_LABELLED_ROUTES + 10 {
            let slot = m.slot_for(&format!("r{i}"));
            m.observe(slot, 0, 200, 10, None);
        }
        let snap = m.snapshot();
        assert_eq!(snap.len(), MAX_LABELLED_ROUTES + 1);
        let other = snap.last().unwrap();
        assert_eq!(&*other.route, OTHER_ROUTES);
        assert_eq!(other.by_class[1], 10);
    }
}
