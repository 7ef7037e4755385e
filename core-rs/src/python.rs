//! The Python boundary: one class and two functions, typed in `pygate/_core.pyi`.
//! Nothing here runs per request; every blocking call releases the GIL.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};

use crate::bench;
use crate::config::{self, ConfigError};
use crate::records::RecordFormat;
use crate::server::Server;
use crate::state::{GatewayState, Shared};

fn value_error(e: ConfigError) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn compile(json: &str, previous: Option<&GatewayState>) -> PyResult<GatewayState> {
    let cfg = config::parse(json).map_err(value_error)?;
    GatewayState::compile(cfg, previous).map_err(value_error)
}

#[pyfunction]
fn version() -> &'static str {
    crate::VERSION
}

#[pyfunction]
fn check_config(config_json: &str) -> PyResult<()> {
    compile(config_json, None).map(|_| ())
}

#[pyclass(module = "pygate._core")]
struct Gateway {
    shared: Arc<Shared>,
    server: Mutex<Option<Server>>,
    local_addr: Mutex<Option<String>>,
}

#[pymethods]
impl Gateway {
    #[new]
    fn new(config_json: &str) -> PyResult<Gateway> {
        let state = compile(config_json, None)?;
        Ok(Gateway {
            shared: Arc::new(Shared::new(state)),
            server: Mutex::new(None),
            local_addr: Mutex::new(None),
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
        *self.local_addr.lock().unwrap() = Some(started.local_addr.to_string());
        *server = Some(started);
        Ok(())
    }

    #[getter]
    fn local_addr(&self) -> PyResult<String> {
        self.local_addr
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
            if next.listen != current.listen {
                return Err(PyValueError::new_err(
                    "listen: changing the listen address needs a restart",
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
        let batch = py.allow_threads(|| shared.records.drain(max_records, format));
        let ends: Vec<u8> = batch
            .row_ends
            .iter()
            .flat_map(|e| e.to_le_bytes())
            .collect();
        Ok((
            batch.count,
            PyBytes::new(py, &batch.data),
            PyBytes::new(py, &ends),
        ))
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
        Ok(d)
    }

    fn shutdown(&self, py: Python<'_>, grace_ms: u64) -> bool {
        let server = self.server.lock().unwrap().take();
        match server {
            Some(s) => py.allow_threads(|| s.shutdown(Duration::from_millis(grace_ms))),
            None => true,
        }
    }
}

/// One load-test run of `pygate bench`, executing on its own threads.
#[pyclass(module = "pygate._core")]
struct Bench {
    progress: Arc<bench::Progress>,
    run: Mutex<Option<std::thread::JoinHandle<Result<bench::Report, String>>>>,
}

#[pymethods]
impl Bench {
    #[new]
    fn new(spec_json: &str, body: &[u8]) -> PyResult<Bench> {
        let spec: bench::BenchSpec = serde_json::from_str(spec_json)
            .map_err(|e| PyValueError::new_err(format!("invalid bench spec: {e}")))?;
        let progress = Arc::new(bench::Progress::default());
        let body = body.to_vec();
        let shared_progress = progress.clone();
        let handle = std::thread::Builder::new()
            .name("pygate-bench".into())
            .spawn(move || bench::run(spec, &body, shared_progress))
            .map_err(|e| PyOSError::new_err(e.to_string()))?;
        Ok(Bench {
            progress,
            run: Mutex::new(Some(handle)),
        })
    }

    /// (measured requests so far, transport errors so far, measuring?, finished?)
    fn progress(&self) -> (u64, u64, bool, bool) {
        let p = &self.progress;
        (
            p.measured_requests.load(Ordering::Relaxed),
            p.errors.load(Ordering::Relaxed),
            p.measuring.load(Ordering::Relaxed),
            p.finished.load(Ordering::Relaxed),
        )
    }

    /// Block until the run ends; returns the report as JSON text.
    fn wait(&self, py: Python<'_>) -> PyResult<String> {
        let handle = self
            .run
            .lock()
            .unwrap()
            .take()
            .ok_or_else(|| PyRuntimeError::new_err("the run was already collected"))?;
        let report = py
            .allow_threads(|| handle.join())
            .map_err(|_| PyRuntimeError::new_err("the generator panicked"))?
            .map_err(PyValueError::new_err)?;
        serde_json::to_string(&report).map_err(|e| PyRuntimeError::new_err(e.to_string()))
    }
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(check_config, m)?)?;
    m.add_class::<Gateway>()?;
    m.add_class::<Bench>()?;
    Ok(())
}
