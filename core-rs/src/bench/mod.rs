//! The load generator behind `pygate bench`.
//!
//! Closed loop: each connection sends its next request when the previous answer is in.
//! Open loop (`rate`): each connection has a fixed timetable of *intended* send times and
//! latency is measured from the intended time, so a stalled server is charged for the requests
//! it made wait (no coordinated omission, as in wrk2).
//! Every connection keeps its own HDR histogram; they are merged once at the end.

mod report;
mod spec;
mod wire;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

pub use report::Report;
pub use spec::BenchSpec;
use spec::Prepared;
use wire::Conn;

/// Counters a progress bar can read while the run goes on.
#[derive(Default)]
pub struct Progress {
    pub measured_requests: AtomicU64,
    pub errors: AtomicU64,
    pub measuring: AtomicBool,
    pub finished: AtomicBool,
    /// Measured requests handed out so far, for `requests` budgets.
    issued: AtomicU64,
}

/// What one connection saw during the measured phase.
struct ConnOutcome {
    latency_us: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<&'static str, u64>,
    bytes: u64,
}

impl ConnOutcome {
    fn new() -> ConnOutcome {
        ConnOutcome {
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            bytes: 0,
        }
    }
}

struct Plan {
    prepared: Prepared,
    spec: BenchSpec,
    start: Instant,
    measure_from: Instant,
    /// None with a request budget: then the run ends when the budget is spent.
    measure_until: Option<Instant>,
    progress: Arc<Progress>,
}

impl Plan {
    fn done(&self, now: Instant) -> bool {
        match (self.measure_until, self.spec.requests) {
            (_, Some(n)) => self.progress.issued.load(Ordering::Relaxed) >= n,
            (Some(until), None) => now >= until,
            (None, None) => true,
        }
    }

    /// Claim the right to send one more request; false once the budget is spent.
    fn claim(&self, measuring: bool) -> bool {
        match self.spec.requests {
            Some(n) if measuring => self.progress.issued.fetch_add(1, Ordering::Relaxed) < n,
            _ => true,
        }
    }
}

fn error_kind(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::TimedOut => "timeout",
        std::io::ErrorKind::ConnectionRefused => "connect",
        std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => "closed",
        std::io::ErrorKind::InvalidData => "protocol",
        _ => "io",
    }
}

async fn run_connection(plan: Arc<Plan>, index: usize) -> ConnOutcome {
    let mut out = ConnOutcome::new();
    let timeout = Duration::from_millis(plan.spec.timeout_ms.max(1));
    let interval = plan
        .spec
        .rate
        .map(|r| Duration::from_secs_f64(plan.spec.connections as f64 / r));
    // Spread the connections' timetables evenly over one interval.
    let mut next_send =
        interval.map(|i| plan.start + i.mul_f64(index as f64 / plan.spec.connections as f64));
    let mut conn: Option<Conn> = None;
    let mut armed_until = Instant::now() + timeout;
    let deadline = tokio::time::sleep_until(armed_until.into());
    tokio::pin!(deadline);
    loop {
        let intended = match (next_send.as_mut(), interval) {
            (Some(at), Some(i)) => {
                tokio::time::sleep_until((*at).into()).await;
                let intended = *at;
                *at += i;
                intended
            }
            _ => Instant::now(),
        };
        if plan.done(intended) {
            break;
        }
        let measuring = intended >= plan.measure_from;
        if measuring && !plan.progress.measuring.load(Ordering::Relaxed) {
            plan.progress.measuring.store(true, Ordering::Relaxed);
        }
        if !plan.claim(measuring) {
            break;
        }
        // One timer per connection, moved forward only when it has fallen a tenth of the
        // timeout behind: re-arming a timer for every request would cost the generator its
        // own speed. A request therefore times out after 90-100% of `timeout`.
        let wanted = Instant::now() + timeout;
        if wanted.saturating_duration_since(armed_until) > timeout / 10 {
            deadline.as_mut().reset(wanted.into());
            armed_until = wanted;
        }
        let result = tokio::select! {
            biased;
            r = async {
                let c = match conn.as_mut() {
                    Some(c) => c,
                    None => conn.insert(Conn::connect(&plan.prepared.addr).await?),
                };
                c.round_trip(&plan.prepared.request, plan.prepared.is_head).await
            } => r,
            _ = deadline.as_mut() => Err(std::io::ErrorKind::TimedOut.into()),
        };
        let finished = Instant::now();
        match result {
            Ok(resp) => {
                if !resp.keep_alive {
                    conn = None;
                }
                if measuring {
                    let us = finished.duration_since(intended).as_micros() as u64;
                    out.latency_us.saturating_record(us.max(1));
                    *out.statuses.entry(resp.status).or_default() += 1;
                    out.bytes += resp.bytes;
                    plan.progress
                        .measured_requests
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Err(e) => {
                conn = None;
                if measuring {
                    *out.errors.entry(error_kind(&e)).or_default() += 1;
                    plan.progress.errors.fetch_add(1, Ordering::Relaxed);
                }
                // A refused connect returns at once; do not spin on a dead target.
                if interval.is_none() {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        }
    }
    out
}

/// Run the whole test; blocks until it ends.
pub fn run(spec: BenchSpec, body: &[u8], progress: Arc<Progress>) -> Result<Report, String> {
    let prepared = spec.prepare(body)?;
    let start = Instant::now();
    let measure_from = start + Duration::from_millis(spec.warmup_ms);
    let measure_until = match (spec.requests, spec.duration_ms) {
        (Some(_), _) => None,
        (None, Some(ms)) => Some(measure_from + Duration::from_millis(ms)),
        (None, None) => Some(measure_from + Duration::from_secs(10)),
    };
    let threads = spec.threads.min(spec.connections);
    let plan = Arc::new(Plan {
        prepared,
        spec,
        start,
        measure_from,
        measure_until,
        progress: progress.clone(),
    });
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let plan = plan.clone();
            std::thread::Builder::new()
                .name(format!("pygate-bench-{t}"))
                .spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a tokio runtime for the generator");
                    rt.block_on(async {
                        let conns: Vec<_> = (t..plan.spec.connections)
                            .step_by(threads)
                            .map(|i| tokio::spawn(run_connection(plan.clone(), i)))
                            .collect();
                        let mut outcomes = Vec::with_capacity(conns.len());
                        for c in conns {
                            outcomes.push(c.await.expect("connection task"));
                        }
                        outcomes
                    })
                })
                .map_err(|e| format!("cannot start generator thread: {e}"))
        })
        .collect::<Result<_, _>>()?;
    let mut outcomes = Vec::new();
    for h in handles {
        outcomes.extend(
            h.join()
                .map_err(|_| "a generator thread panicked".to_string())?,
        );
    }
    progress.finished.store(true, Ordering::Relaxed);
    let measured = Instant::now().saturating_duration_since(measure_from);
    Ok(Report::build(&plan.spec, measured, outcomes.into_iter()))
}

#[cfg(test)]
mod tests;
