//! Active health checks: probes the core sends to each target of an upstream that asks for
//! them, and the probe state the balancers read.
//!
//! Probes run on one dedicated thread with its own single-threaded runtime (`Prober`), not
//! per worker: N workers probing would multiply the load on every target by N and could
//! disagree about a target's health. The thread publishes results through atomics on
//! `ProbeState`, which `Upstream::pick` reads without a lock. Each upstream keeps the
//! `ProbeState` of a target (by upstream name and address) across reloads
//! (`Upstream::keep_health_of`), and the prober notices a new config by the state's pointer
//! and starts or stops probes to match; a target that was down stays down after a reload.
//! Probes go only to configured target addresses; their response bodies are never read.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Method, Request};
use serde::Deserialize;
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::pool::{ConnectError, Target};
use crate::body::RequestBody;
use crate::config::ConfigError;
use crate::state::{GatewayState, Shared};

/// Sent with every probe, so a target's access log can tell probes from clients.
pub const USER_AGENT: &str = "pygate-health-check";
/// How often the prober looks for a new config (one pointer comparison).
const RESCAN: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ProbeKind {
    /// GET `path`; passes on an expected status.
    Http,
    /// A TCP connect passes.
    Tcp,
}

/// `health_check.active` of an upstream (Python's schema documents the user-facing shape).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ActiveCheckConfig {
    #[serde(rename = "type")]
    pub kind: ProbeKind,
    pub path: String,
    /// The probes' Host header; None: the target's address.
    #[serde(default)]
    pub host: Option<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive passing probes that bring a target back.
    pub successes: u32,
    /// Consecutive failing probes that take a target out.
    pub failures: u32,
    /// Empty: any 2xx or 3xx passes.
    #[serde(default)]
    pub expected_statuses: Vec<u16>,
}

impl ActiveCheckConfig {
    pub fn validate(&self, field: &str) -> Result<(), ConfigError> {
        let at = |f: &str| format!("{field}.{f}");
        if self.kind == ProbeKind::Http
            && (!self.path.starts_with('/') || self.path.parse::<http::Uri>().is_err())
        {
            return Err(ConfigError::new(
                at("path"),
                format!("expected a path starting with /, got {:?}", self.path),
            ));
        }
        if let Some(host) = &self.host {
            if host.is_empty() || HeaderValue::from_str(host).is_err() {
                return Err(ConfigError::new(
                    at("host"),
                    format!("expected a Host header value, got {host:?}"),
                ));
            }
        }
        for (name, value) in [("interval", self.interval_ms), ("timeout", self.timeout_ms)] {
            if value == 0 {
                return Err(ConfigError::new(at(name), "expected a duration > 0"));
            }
        }
        for (name, value) in [("successes", self.successes), ("failures", self.failures)] {
            if value == 0 {
                return Err(ConfigError::new(at(name), "expected an integer >= 1"));
            }
        }
        if let Some(i) = self
            .expected_statuses
            .iter()
            .position(|s| !(100..=599).contains(s))
        {
            return Err(ConfigError::new(
                at(&format!("expected_statuses[{i}]")),
                "expected an HTTP status from 100 to 599",
            ));
        }
        Ok(())
    }

    fn expects(&self, status: u16) -> bool {
        if self.expected_statuses.is_empty() {
            (200..400).contains(&status)
        } else {
            self.expected_statuses.contains(&status)
        }
    }
}

/// Why the last failing probe failed (kept as a number in an atomic).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ProbeFailure {
    None = 0,
    Connect = 1,
    Timeout = 2,
    Status = 3,
    Protocol = 4,
    Tls = 5,
}

impl ProbeFailure {
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeFailure::None => "",
            ProbeFailure::Connect => "connect_failed",
            ProbeFailure::Timeout => "timeout",
            ProbeFailure::Status => "unexpected_status",
            ProbeFailure::Protocol => "bad_response",
            ProbeFailure::Tls => "tls_failed",
        }
    }

    fn from_u8(v: u8) -> ProbeFailure {
        match v {
            1 => ProbeFailure::Connect,
            2 => ProbeFailure::Timeout,
            3 => ProbeFailure::Status,
            4 => ProbeFailure::Protocol,
            5 => ProbeFailure::Tls,
            _ => ProbeFailure::None,
        }
    }
}

/// One target's probe results. Only its probe task writes it; balancers read `is_down`.
/// A new target starts up, so a fresh gateway serves before its first probe answers.
#[derive(Default)]
pub struct ProbeState {
    down: AtomicBool,
    /// Consecutive results against the current verdict (fails while up, passes while down).
    streak: AtomicU32,
    passed: AtomicU64,
    failed: AtomicU64,
    /// Times the verdict flipped (up -> down or back).
    transitions: AtomicU64,
    last_failure: AtomicU8,
    /// The last HTTP probe's status (0: none yet, or a TCP check).
    last_status: AtomicU16,
}

/// What one probe found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeResult {
    pub passed: bool,
    pub failure: ProbeFailure,
    pub status: u16,
}

impl ProbeState {
    pub fn is_down(&self) -> bool {
        self.down.load(Ordering::Relaxed)
    }

    pub fn record(&self, result: ProbeResult, cfg: &ActiveCheckConfig) {
        let counter = if result.passed {
            &self.passed
        } else {
            &self.failed
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if result.status != 0 {
            self.last_status.store(result.status, Ordering::Relaxed);
        }
        if !result.passed {
            self.last_failure
                .store(result.failure as u8, Ordering::Relaxed);
        }
        let down = self.is_down();
        if result.passed != down {
            // The result agrees with the verdict: any streak against it is broken.
            self.streak.store(0, Ordering::Relaxed);
            return;
        }
        let needed = if down { cfg.successes } else { cfg.failures };
        let streak = self.streak.fetch_add(1, Ordering::Relaxed) + 1;
        if streak >= needed {
            self.down.store(!down, Ordering::Relaxed);
            self.streak.store(0, Ordering::Relaxed);
            self.transitions.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self) -> ProbeSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ProbeSnapshot {
            down: self.is_down(),
            passed: get(&self.passed),
            failed: get(&self.failed),
            transitions: get(&self.transitions),
            last_failure: ProbeFailure::from_u8(self.last_failure.load(Ordering::Relaxed)),
            last_status: self.last_status.load(Ordering::Relaxed),
        }
    }
}

pub struct ProbeSnapshot {
    pub down: bool,
    pub passed: u64,
    pub failed: u64,
    pub transitions: u64,
    pub last_failure: ProbeFailure,
    pub last_status: u16,
}

/// An upstream's active check: its config and one state per target, in target order.
pub struct ActiveCheck {
    pub config: Arc<ActiveCheckConfig>,
    pub probes: Vec<Arc<ProbeState>>,
}

/// One target's health as `pygate status`, `/metrics` and the admin API show it.
pub struct TargetHealth {
    pub upstream: String,
    pub target: Arc<str>,
    /// Takes requests: neither ejected nor down by its probes.
    pub healthy: bool,
    /// Ejected by passive health (failed requests) until its cooldown ends.
    pub ejected: bool,
    /// None: the upstream has no active checks.
    pub probe: Option<ProbeSnapshot>,
}

/// Every target of every upstream, in config order.
pub fn report(state: &GatewayState, now_ms: u64) -> Vec<TargetHealth> {
    let mut out = Vec::new();
    for upstream in &state.upstreams {
        for (i, target) in upstream.targets.iter().enumerate() {
            out.push(TargetHealth {
                upstream: upstream.name.clone(),
                target: target.addr.clone(),
                healthy: upstream.is_usable(i, now_ms),
                ejected: target.health.is_ejected(now_ms),
                probe: upstream.probe(i).map(|p| p.snapshot()),
            });
        }
    }
    out
}

/// Send one probe to `target`.
pub async fn probe(target: &Target, cfg: &ActiveCheckConfig) -> ProbeResult {
    let fail = |failure| ProbeResult {
        passed: false,
        failure,
        status: 0,
    };
    let timeout = Duration::from_millis(cfg.timeout_ms);
    match tokio::time::timeout(timeout, probe_within(target, cfg, timeout)).await {
        Ok(Ok(status)) => ProbeResult {
            passed: status.is_none_or(|s| cfg.expects(s)),
            failure: ProbeFailure::Status,
            status: status.unwrap_or(0),
        },
        Ok(Err(failure)) => fail(failure),
        Err(_) => fail(ProbeFailure::Timeout),
    }
}

/// The status of the probe's answer (None for a TCP check). An HTTP probe goes the way
/// requests do (the target's transport: TLS, HTTP/2), on a connection of its own.
async fn probe_within(
    target: &Target,
    cfg: &ActiveCheckConfig,
    timeout: Duration,
) -> Result<Option<u16>, ProbeFailure> {
    if cfg.kind == ProbeKind::Tcp {
        TcpStream::connect(&*target.addr)
            .await
            .map_err(|_| ProbeFailure::Connect)?;
        return Ok(None);
    }
    let mut sender = target.connect(timeout).await.map_err(|e| match e {
        ConnectError::Timeout => ProbeFailure::Timeout,
        ConnectError::Failed => ProbeFailure::Connect,
        ConnectError::Tls => ProbeFailure::Tls,
    })?;
    let host = cfg.host.as_deref().unwrap_or(&target.addr);
    let mut request = Request::builder()
        .method(Method::GET)
        .uri(&cfg.path)
        .header(header::HOST, host)
        .header(header::USER_AGENT, USER_AGENT);
    if !target.transport.multiplexed() {
        // HTTP/2 has no Connection header; its connection ends with the sender.
        request = request.header(header::CONNECTION, "close");
    }
    let mut request = request
        .body(RequestBody::full(Bytes::new()))
        .map_err(|_| ProbeFailure::Protocol)?;
    target.transport.prepare(&mut request);
    // The answer is dropped with its head: the body is never read, and the connection goes.
    sender
        .send(request)
        .await
        .map(|r| Some(r.status().as_u16()))
        .map_err(|_| ProbeFailure::Protocol)
}

async fn probe_loop(target: Arc<Target>, cfg: Arc<ActiveCheckConfig>, state: Arc<ProbeState>) {
    let interval = Duration::from_millis(cfg.interval_ms);
    loop {
        state.record(probe(&target, &cfg).await, &cfg);
        tokio::time::sleep(interval).await;
    }
}

/// The thread that runs every probe.
pub struct Prober {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Prober {
    pub fn start(shared: Arc<Shared>) -> std::io::Result<Prober> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pygate-health".into())
            .spawn(move || run(shared, stopped))?;
        Ok(Prober {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A running probe task, by the address of the state it writes (the task holds that state,
/// so the address is not reused while it runs).
struct Running {
    target: Arc<Target>,
    config: Arc<ActiveCheckConfig>,
    task: tokio::task::JoinHandle<()>,
}
type Probes = HashMap<*const ProbeState, Running>;

fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for health checks");
    runtime.block_on(async move {
        let mut running: Probes = HashMap::new();
        let mut seen: Option<Arc<GatewayState>> = None;
        loop {
            let current = shared.state.load_full();
            if !seen.as_ref().is_some_and(|s| Arc::ptr_eq(s, &current)) {
                reconcile(&current, &mut running);
                seen = Some(current);
            }
            tokio::select! {
                _ = tokio::time::sleep(RESCAN) => {}
                _ = stopped.changed() => break,
            }
        }
        for (_, probe) in running.drain() {
            probe.task.abort();
        }
    });
}

/// Start a probe task for every (target, check) of `state` that has none, and stop those of
/// targets, upstreams or checks no longer there. A target whose state survived the reload
/// with the same check and transport keeps its task (and its interval's rhythm).
fn reconcile(state: &GatewayState, running: &mut Probes) {
    let mut wanted = HashMap::new();
    for upstream in &state.upstreams {
        let Some(check) = &upstream.active else {
            continue;
        };
        for (target, probe) in upstream.targets.iter().zip(&check.probes) {
            wanted.insert(
                Arc::as_ptr(probe),
                (target.clone(), check.config.clone(), probe.clone()),
            );
        }
    }
    running.retain(|key, run| {
        let keep = wanted
            .get(key)
            .is_some_and(|(t, c, _)| Arc::ptr_eq(t, &run.target) && *c == run.config);
        if !keep {
            run.task.abort();
        }
        keep
    });
    for (key, (target, config, probe)) in wanted {
        running.entry(key).or_insert_with(|| Running {
            task: tokio::spawn(probe_loop(target.clone(), config.clone(), probe)),
            target,
            config,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(successes: u32, failures: u32) -> ActiveCheckConfig {
        ActiveCheckConfig {
            kind: ProbeKind::Http,
            path: "/health".into(),
            host: None,
            interval_ms: 10,
            timeout_ms: 500,
            successes,
            failures,
            expected_statuses: Vec::new(),
        }
    }

    const PASS: ProbeResult = ProbeResult {
        passed: true,
        failure: ProbeFailure::Status,
        status: 200,
    };
    const FAIL: ProbeResult = ProbeResult {
        passed: false,
        failure: ProbeFailure::Status,
        status: 503,
    };

    #[test]
    fn thresholds_take_a_target_out_and_bring_it_back() {
        let c = cfg(2, 3);
        let s = ProbeState::default();
        s.record(FAIL, &c);
        s.record(FAIL, &c);
        s.record(PASS, &c); // breaks the streak
        s.record(FAIL, &c);
        s.record(FAIL, &c);
        assert!(!s.is_down(), "two in a row are not three");
        s.record(FAIL, &c);
        assert!(s.is_down());
        s.record(PASS, &c);
        s.record(FAIL, &c);
        s.record(PASS, &c);
        assert!(s.is_down(), "one pass, then a fail: not two in a row");
        s.record(PASS, &c);
        assert!(!s.is_down());
        let snap = s.snapshot();
        assert_eq!((snap.passed, snap.failed, snap.transitions), (4, 6, 2));
        assert_eq!(snap.last_failure, ProbeFailure::Status);
        assert_eq!(snap.last_status, 200);
    }

    #[test]
    fn statuses_pass_by_the_list_or_by_class() {
        let mut c = cfg(1, 1);
        assert!(c.expects(204) && c.expects(302) && !c.expects(404) && !c.expects(500));
        c.expected_statuses = vec![418];
        assert!(c.expects(418) && !c.expects(200));
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut c = cfg(1, 1);
        c.path = "health".into();
        assert_eq!(c.validate("u").unwrap_err().path, "u.path");
        c.path = "/h".into();
        c.failures = 0;
        assert_eq!(c.validate("u").unwrap_err().path, "u.failures");
        c.failures = 1;
        c.expected_statuses = vec![200, 99];
        assert_eq!(c.validate("u").unwrap_err().path, "u.expected_statuses[1]");
        c.expected_statuses.clear();
        c.host = Some("a\nb".into());
        assert_eq!(c.validate("u").unwrap_err().path, "u.host");
    }

    #[tokio::test]
    async fn probes_see_statuses_refusals_and_timeouts() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let n = conn.read(&mut head).await.unwrap();
            conn.write_all(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&head[..n]).to_lowercase()
        });
        let target = Target::plain(&addr, 1, 1);
        let result = probe(&target, &cfg(1, 1)).await;
        assert_eq!((result.passed, result.status), (false, 503));
        let head = server.await.unwrap();
        assert!(head.starts_with("get /health http/1.1\r\n"), "{head}");
        assert!(head.contains(&format!("host: {addr}\r\n")), "{head}");
        assert!(
            head.contains("user-agent: pygate-health-check\r\n"),
            "{head}"
        );
        // Nobody listens there any more.
        let refused = probe(&target, &cfg(1, 1)).await;
        assert_eq!(refused.failure, ProbeFailure::Connect);
        // Accepts (the backlog) but never answers.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let silent = Target::plain(&listener.local_addr().unwrap().to_string(), 1, 1);
        let mut c = cfg(1, 1);
        c.timeout_ms = 50;
        assert_eq!(probe(&silent, &c).await.failure, ProbeFailure::Timeout);
        c.kind = ProbeKind::Tcp;
        assert!(probe(&silent, &c).await.passed);
    }
}
