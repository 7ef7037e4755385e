//! `PluginCall`: one call waiting for the route's Python plugins (see python/bridge.rs), with
//! the replies that let it go on. Attributes are built on access, so a plugin that only looks
//! at one header does not pay for the others.

use std::sync::Mutex;

use bytes::Bytes;
use http::HeaderMap;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::python::bridge::{HeaderList, Phase, PluginCall as Call, Verdict};
use crate::records::columns::{for_each_column, ColumnSink, Value};
use crate::records::CallRecord;

#[pyclass(module = "pygate._core", name = "PluginCall", frozen)]
pub struct PyPluginCall {
    call: Call,
    reply: Mutex<Option<tokio::sync::oneshot::Sender<Verdict>>>,
}

impl PyPluginCall {
    pub fn new(mut call: Call) -> PyPluginCall {
        let reply = Mutex::new(call.reply.take());
        PyPluginCall { call, reply }
    }

    fn request(&self) -> PyResult<&crate::python::bridge::RequestView> {
        self.call
            .request
            .as_deref()
            .ok_or_else(|| PyRuntimeError::new_err("a log call has no request; use .record"))
    }

    fn response_view(&self) -> PyResult<&crate::python::bridge::ResponseView> {
        self.call
            .response
            .as_ref()
            .ok_or_else(|| PyRuntimeError::new_err("only response-phase calls have a response"))
    }

    fn send(&self, expected: Phase, verdict: Verdict) -> PyResult<()> {
        if self.call.phase != expected && !matches!(verdict, Verdict::Fail { .. }) {
            return Err(PyRuntimeError::new_err(format!(
                "this reply is for the {} phase; this call is in the {} phase",
                expected.name(),
                self.call.phase.name()
            )));
        }
        let sender = self.reply.lock().unwrap().take().ok_or_else(|| {
            PyRuntimeError::new_err("this call was already answered (or is a log call)")
        })?;
        // The worker may have given up (timeout, client gone); nothing is left to do then.
        let _ = sender.send(verdict);
        Ok(())
    }
}

/// Header values cross as latin-1 text: every byte maps to one char and back, so no value
/// is ever lost or refused on the way.
fn latin1(bytes: &[u8]) -> String {
    bytes.iter().map(|&b| b as char).collect()
}

fn header_pairs<'py>(py: Python<'py>, headers: &HeaderMap) -> PyResult<Bound<'py, PyList>> {
    let items: Vec<(&str, String)> = headers
        .iter()
        .map(|(n, v)| (n.as_str(), latin1(v.as_bytes())))
        .collect();
    PyList::new(py, items)
}

fn header_list(pairs: Vec<(String, String)>) -> PyResult<HeaderList> {
    pairs
        .into_iter()
        .map(|(name, value)| {
            let bytes: Option<Vec<u8>> = value
                .chars()
                .map(|c| u8::try_from(u32::from(c)).ok())
                .collect();
            bytes.map(|b| (name.clone(), b)).ok_or_else(|| {
                PyValueError::new_err(format!(
                    "header {name:?}: values must be latin-1 text (encode other text first)"
                ))
            })
        })
        .collect()
}

/// The record as a log plugin sees it: the columns of `pygate.requests` by name (`ts` in
/// seconds with a millisecond fraction, as in JSONEachRow; latency in unrounded
/// milliseconds; `client_ip` None when unknown), plus `ts_ms`, the start in integer
/// milliseconds, the name log plugins were given before `ts`.
struct RecordDict<'py> {
    dict: Bound<'py, PyDict>,
    failed: Option<PyErr>,
}

impl ColumnSink for RecordDict<'_> {
    fn column(&mut self, name: &'static str, value: Value<'_>) {
        if self.failed.is_some() {
            return;
        }
        let d = &self.dict;
        let set = match value {
            Value::DateTime64Ms(ms) => d.set_item(name, ms as f64 / 1000.0),
            Value::String(s) | Value::LowCardinality(s) => d.set_item(name, s),
            Value::Ip(ip) => d.set_item(name, ip.map(|ip| ip.to_string())),
            Value::UInt16(n) => d.set_item(name, n),
            Value::UInt64(n) => d.set_item(name, n),
            Value::MillisFromMicros(us) => d.set_item(name, us as f64 / 1000.0),
            Value::Bool(b) => d.set_item(name, b),
        };
        self.failed = set.err();
    }
}

fn record_dict<'py>(py: Python<'py>, r: &CallRecord) -> PyResult<Bound<'py, PyDict>> {
    let mut view = RecordDict {
        dict: PyDict::new(py),
        failed: None,
    };
    for_each_column(r, &mut view);
    if let Some(e) = view.failed {
        return Err(e);
    }
    view.dict.set_item("ts_ms", r.ts_ms)?;
    Ok(view.dict)
}

#[pymethods]
impl PyPluginCall {
    #[getter]
    fn phase(&self) -> &'static str {
        self.call.phase.name()
    }

    #[getter]
    fn route(&self) -> PyResult<String> {
        match (&self.call.request, &self.call.record) {
            (Some(r), _) => Ok(r.route.to_string()),
            (None, Some(rec)) => Ok(rec.route.as_deref().unwrap_or("").to_owned()),
            _ => Ok(String::new()),
        }
    }

    #[getter]
    fn request_id(&self) -> String {
        match (&self.call.request, &self.call.record) {
            (Some(r), _) => r.request_id.clone(),
            (None, Some(rec)) => rec.request_id.clone(),
            _ => String::new(),
        }
    }

    #[getter]
    fn method(&self) -> PyResult<&str> {
        Ok(self.request()?.method.as_str())
    }

    #[getter]
    fn uri(&self) -> PyResult<&str> {
        Ok(&self.request()?.uri)
    }

    #[getter]
    fn client_ip(&self) -> PyResult<String> {
        Ok(self.request()?.client_ip.to_string())
    }

    #[getter]
    fn consumer(&self) -> PyResult<Option<String>> {
        Ok(self.request()?.consumer.as_deref().map(str::to_owned))
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_pairs(py, &self.request()?.headers)
    }

    #[getter]
    fn body<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.request()?.body))
    }

    #[getter]
    fn timeout_ms(&self) -> PyResult<u64> {
        Ok(self.request()?.timeout_ms)
    }

    #[getter]
    fn status(&self) -> PyResult<u16> {
        Ok(self.response_view()?.status)
    }

    #[getter]
    fn response_headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        header_pairs(py, &self.response_view()?.headers)
    }

    #[getter]
    fn response_body<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        Ok(self
            .response_view()?
            .body
            .as_ref()
            .map(|b| PyBytes::new(py, b)))
    }

    #[getter]
    fn record<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let record = self.call.record.as_ref().ok_or_else(|| {
            PyRuntimeError::new_err("only log-phase calls carry the finished record")
        })?;
        record_dict(py, record)
    }

    #[pyo3(signature = (*, uri = None, headers = None, body = None, upstream = None))]
    fn continue_request(
        &self,
        uri: Option<String>,
        headers: Option<Vec<(String, String)>>,
        body: Option<&[u8]>,
        upstream: Option<String>,
    ) -> PyResult<()> {
        let verdict = Verdict::ContinueRequest {
            uri,
            headers: headers.map(header_list).transpose()?,
            body: body.map(Bytes::copy_from_slice),
            upstream,
        };
        self.send(Phase::Access, verdict)
    }

    #[pyo3(signature = (*, status = None, headers = None, body = None))]
    fn continue_response(
        &self,
        status: Option<u16>,
        headers: Option<Vec<(String, String)>>,
        body: Option<&[u8]>,
    ) -> PyResult<()> {
        let verdict = Verdict::ContinueResponse {
            status,
            headers: headers.map(header_list).transpose()?,
            body: body.map(Bytes::copy_from_slice),
        };
        self.send(Phase::Response, verdict)
    }

    fn answer(&self, status: u16, headers: Vec<(String, String)>, body: &[u8]) -> PyResult<()> {
        let verdict = Verdict::Answer {
            status,
            headers: header_list(headers)?,
            body: Bytes::copy_from_slice(body),
        };
        self.send(Phase::Access, verdict)
    }

    #[pyo3(signature = (status, kind, message, headers = None))]
    fn fail(
        &self,
        status: u16,
        kind: String,
        message: String,
        headers: Option<Vec<(String, String)>>,
    ) -> PyResult<()> {
        let verdict = Verdict::Fail {
            status,
            kind,
            message,
            headers: header_list(headers.unwrap_or_default())?,
        };
        self.send(self.call.phase, verdict)
    }

    fn __repr__(&self) -> String {
        format!(
            "<PluginCall {} route={:?} request_id={:?}>",
            self.call.phase.name(),
            self.route().unwrap_or_default(),
            self.request_id()
        )
    }
}
