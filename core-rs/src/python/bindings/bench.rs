//! `Bench`: one run of the load generator behind `pygate bench`.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;

use crate::bench;

/// One load-test run of `pygate bench`, executing on its own threads.
#[pyclass(module = "pygate._core")]
pub struct Bench {
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
