//! `Gateway`: the data plane as Python sees it (start, reload, drain records, stats, stop).

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use super::plugin_call::PyPluginCall;

use crate::config::{self, ConfigError};
use crate::records::clickhouse_native::{requests_to_native, NativeScratch};
use crate::records::{DrainedBatch, RecordFormat};
use crate::server::Server;
use crate::state::{GatewayState, Shared};
use crate::upstream::health::{self, Prober};

fn value_error(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn compile(json: &str, previous: Option<&GatewayState>) -> PyResult<GatewayState> {
    let cfg = config::parse(json).map_err(value_error)?;
    GatewayState::compile(cfg, previous).map_err(value_error)
}

#[pyfunction]
pub fn version() -> &'static str {
    crate::VERSION
}

/// `pygate.requests` rows in RowBinary -> one Native block (cheaper for chDB to insert).
#[pyfunction]
pub fn requests_row_binary_to_native<'py>(
    py: Python<'py>,
    rows: &[u8],
) -> PyResult<Bound<'py, PyBytes>> {
    thread_local! {
        static SCRATCH: RefCell<NativeScratch> = RefCell::default();
    }
    py.allow_threads(|| SCRATCH.with_borrow_mut(|s| requests_to_native(rows, s)))
        .map_err(PyValueError::new_err)?;
    Ok(SCRATCH.with_borrow(|s| PyBytes::new(py, &s.out)))
}

#[pyfunction]
pub fn check_config(config_json: &str) -> PyResult<()> {
    compile(config_json, None).map(|_| ())
}

#[pyclass(module = "pygate._core")]
pub struct Gateway {
    shared: Arc<Shared>,
    /// Reused by every drain (see RecordBuffer::drain_into).
    drain_scratch: Mutex<DrainedBatch>,
    server: Mutex<Option<Server>>,
    /// Runs the active health checks while the server runs (upstream/health.rs).
    prober: Mutex<Option<Prober>>,
    /// Sends sampled calls' spans to the OTLP collector (otlp/export.rs).
    exporter: Mutex<Option<crate::otlp::export::Exporter>>,
    local_addrs: Mutex<Option<Vec<String>>>,
}

#[pymethods]
impl Gateway {
    #[new]
    fn new(config_json: &str) -> PyResult<Gateway> {
        let state = compile(config_json, None)?;
        Ok(Gateway {
            shared: Arc::new(
                Shared::new(state)
                    .map_err(|e| PyOSError::new_err(format!("cannot set up the gateway: {e}")))?,
            ),
            server: Mutex::new(None),
            prober: Mutex::new(None),
            exporter: Mutex::new(None),
            local_addrs: Mutex::new(None),
            drain_scratch: Mutex::new(DrainedBatch::default()),
        })
    }

    fn start(&self, py: Python<'_>) -> PyResult<()> {
        let mut server = self.server.lock().unwrap();
        if server.is_some() {
            return Err(PyRuntimeError::new_err("the gateway is already started"));
        }
        let shared = self.shared.clone();
        let started = py
            .allow_threads(|| Server::start(shared))
            .map_err(|e| PyOSError::new_err(format!("cannot listen: {e}")))?;
        let addrs = started.local_addrs.iter().map(|a| a.to_string()).collect();
        *self.local_addrs.lock().unwrap() = Some(addrs);
        *server = Some(started);
        let prober = Prober::start(self.shared.clone())
            .map_err(|e| PyOSError::new_err(format!("cannot start health checks: {e}")))?;
        *self.prober.lock().unwrap() = Some(prober);
        let exporter = crate::otlp::export::Exporter::start(self.shared.clone())
            .map_err(|e| PyOSError::new_err(format!("cannot start the OTLP exporter: {e}")))?;
        *self.exporter.lock().unwrap() = Some(exporter);
        Ok(())
    }

    /// The first listener's bound address.
    #[getter]
    fn local_addr(&self) -> PyResult<String> {
        Ok(self.local_addrs()?.swap_remove(0))
    }

    /// Every listener's bound address, in config order (a port 0 resolved).
    #[getter]
    fn local_addrs(&self) -> PyResult<Vec<String>> {
        self.local_addrs
            .lock()
            .unwrap()
            .clone()
            .ok_or_else(|| PyRuntimeError::new_err("the gateway is not started"))
    }

    fn reload(&self, py: Python<'_>, config_json: &str) -> PyResult<()> {
        let shared = self.shared.clone();
        py.allow_threads(|| {
            let current = shared.state.load_full();
            let next = compile(config_json, Some(&current))?;
            if next.listen_addrs() != current.listen_addrs() {
                return Err(PyValueError::new_err(
                    "listen: changing the listen addresses needs a restart",
                ));
            }
            if next.config.workers != current.config.workers {
                return Err(PyValueError::new_err(
                    "workers: changing the number of workers needs a restart",
                ));
            }
            if next.config.log_buffer_capacity != current.config.log_buffer_capacity {
                return Err(PyValueError::new_err(
                    "log.buffer: changing the record buffer size needs a restart",
                ));
            }
            next.serving(Some(&current));
            shared.state.store(Arc::new(next));
            shared.stats.reloads.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }

    #[pyo3(signature = (max_records, format = "JSONEachRow"))]
    fn drain_records<'py>(
        &self,
        py: Python<'py>,
        max_records: usize,
        format: &str,
    ) -> PyResult<(usize, Bound<'py, PyBytes>, Bound<'py, PyBytes>)> {
        let format = RecordFormat::parse(format).ok_or_else(|| {
            PyValueError::new_err(format!(
                "format: expected JSONEachRow or RowBinary, got {format:?}"
            ))
        })?;
        let shared = self.shared.clone();
        // try_lock: never wait for the lock while holding the GIL; two drains at once
        // (there is one shipper) would just use a fresh buffer.
        let mut fresh = DrainedBatch::default();
        let mut scratch = self.drain_scratch.try_lock().ok();
        let batch: &mut DrainedBatch = match scratch.as_deref_mut() {
            Some(b) => b,
            None => &mut fresh,
        };
        py.allow_threads(|| shared.records.drain_into(max_records, format, batch));
        let ends = PyBytes::new_with(py, batch.row_ends.len() * 4, |out| {
            for (chunk, end) in out.chunks_exact_mut(4).zip(&batch.row_ends) {
                chunk.copy_from_slice(&end.to_le_bytes());
            }
            Ok(())
        })?;
        Ok((batch.count, PyBytes::new(py, &batch.data), ends))
    }

    /// Readable when Python plugin calls are waiting (register it with the event loop).
    fn plugin_wakeup_fd(&self) -> i32 {
        self.shared.bridge.wakeup_fd()
    }

    #[pyo3(signature = (max_calls = 4096))]
    fn take_plugin_calls<'py>(
        &self,
        py: Python<'py>,
        max_calls: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let calls = self.shared.bridge.take(max_calls);
        let objects = calls
            .into_iter()
            .map(|c| Py::new(py, PyPluginCall::new(c)))
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, objects)
    }

    fn pending_records(&self) -> usize {
        self.shared.records.pending()
    }

    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (name, value) in self.shared.stats.snapshot() {
            d.set_item(name, value)?;
        }
        d.set_item("records_dropped", self.shared.records.dropped())?;
        d.set_item("records_pending", self.shared.records.pending())?;
        let dropped = self.shared.bridge.log_calls_dropped.load(Ordering::Relaxed);
        d.set_item("plugin_log_dropped", dropped)?;
        for (name, value) in self.shared.spans.snapshot() {
            d.set_item(name, value)?;
        }
        Ok(d)
    }

    /// Per-route counters for /metrics (route_metrics.rs): one dict per route name with
    /// `route`, `responses` (1xx..5xx), and `latency_us` / `upstream_latency_us` as
    /// {"buckets": [non-cumulative counts, the last above every bound], "sum": us}.
    fn route_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let histogram = |h: &crate::route_metrics::HistogramSnapshot| -> PyResult<_> {
            let d = PyDict::new(py);
            d.set_item("buckets", h.buckets.to_vec())?;
            d.set_item("sum", h.sum_us)?;
            Ok(d)
        };
        let rows = PyList::empty(py);
        for snap in self.shared.route_metrics.snapshot() {
            let d = PyDict::new(py);
            d.set_item("route", &*snap.route)?;
            d.set_item("responses", snap.by_class.to_vec())?;
            d.set_item("latency_us", histogram(&snap.latency)?)?;
            d.set_item("upstream_latency_us", histogram(&snap.upstream_latency)?)?;
            rows.append(d)?;
        }
        Ok(rows)
    }

    /// Per-upstream-target counters for /metrics (upstream_metrics.rs): one dict per
    /// (upstream, target) tried so far with `upstream`, `target`, `responses` (the
    /// upstream's answers, 1xx..5xx), `failures` ({reason: n}) and `latency_us` (to the
    /// answer's head, as in `route_metrics`).
    fn upstream_metrics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = PyList::empty(py);
        let registry = self.shared.state.load().upstream_metrics.clone();
        for snap in registry.snapshot() {
            let d = PyDict::new(py);
            d.set_item("upstream", &*snap.upstream)?;
            d.set_item("target", &*snap.target)?;
            d.set_item("responses", snap.by_class.to_vec())?;
            let failures = PyDict::new(py);
            let reasons = crate::upstream_metrics::FAILURE_REASONS.iter();
            for (reason, n) in reasons.zip(snap.failures) {
                failures.set_item(reason, n)?;
            }
            d.set_item("failures", failures)?;
            let latency = PyDict::new(py);
            latency.set_item("buckets", snap.latency.buckets.to_vec())?;
            latency.set_item("sum", snap.latency.sum_us)?;
            d.set_item("latency_us", latency)?;
            rows.append(d)?;
        }
        Ok(rows)
    }

    /// The upper bounds (microseconds) of `route_metrics`' histogram buckets.
    #[staticmethod]
    fn latency_bounds_us() -> Vec<u64> {
        crate::route_metrics::LATENCY_BOUNDS_US.to_vec()
    }

    /// One dict per target of every upstream (health::report): `upstream`, `target`,
    /// `healthy`, `ejected`, and `probe` (None without active checks) with `healthy`,
    /// `passed`, `failed`, `transitions`, `last_failure` ("" or a kind), `last_status`.
    fn upstream_health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let rows = PyList::empty(py);
        let state = self.shared.state.load();
        for t in health::report(&state, crate::clock::now_ms()) {
            let d = PyDict::new(py);
            d.set_item("upstream", &t.upstream)?;
            d.set_item("target", &*t.target)?;
            d.set_item("healthy", t.healthy)?;
            d.set_item("ejected", t.ejected)?;
            match t.probe {
                None => d.set_item("probe", py.None())?,
                Some(p) => {
                    let probe = PyDict::new(py);
                    probe.set_item("healthy", !p.down)?;
                    probe.set_item("passed", p.passed)?;
                    probe.set_item("failed", p.failed)?;
                    probe.set_item("transitions", p.transitions)?;
                    probe.set_item("last_failure", p.last_failure.as_str())?;
                    let status = (p.last_status != 0).then_some(p.last_status);
                    probe.set_item("last_status", status)?;
                    d.set_item("probe", probe)?;
                }
            }
            rows.append(d)?;
        }
        Ok(rows)
    }

    fn shutdown(&self, py: Python<'_>, grace_ms: u64) -> bool {
        // Dropping the prober stops its thread: no probes after the gateway stops.
        let prober = self.prober.lock().unwrap().take();
        py.allow_threads(|| drop(prober));
        let server = self.server.lock().unwrap().take();
        let clean = match server {
            Some(s) => py.allow_threads(|| s.shutdown(Duration::from_millis(grace_ms))),
            None => true,
        };
        // After the last call: the exporter sends what is queued, then stops.
        let exporter = self.exporter.lock().unwrap().take();
        py.allow_threads(|| drop(exporter));
        clean
    }
}
