//! `HotPaths`: the per-request functions of the core, callable one at a time from Python so
//! that pytest-benchmark can track them (benchmarks/micro/) and tests can probe them.
//! Each call goes through exactly the code a request uses; only the pyo3 call is extra.

use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::clock::{now_ns, unix_ms};
use crate::config;
use crate::plugins::rate_limit::RateLimit;
use crate::records::columns::columns;
use crate::records::{encode_json_row, encode_row_binary, CallRecord};
use crate::router::RouteMatch;
use crate::state::GatewayState;

/// (name, ClickHouse type) of each column of `pygate.requests`, in the order every encoder
/// writes them: what tests compare with `DESCRIBE TABLE` on a migrated store.
#[pyfunction]
pub fn requests_columns() -> Vec<(&'static str, &'static str)> {
    columns()
        .iter()
        .map(|c| (c.name, c.clickhouse_type))
        .collect()
}

#[pyclass(module = "pygate._core", frozen)]
pub struct HotPaths {
    state: GatewayState,
    sample: CallRecord,
}

#[pymethods]
impl HotPaths {
    #[new]
    fn new(config_json: &str) -> PyResult<HotPaths> {
        let cfg = config::parse(config_json).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let state =
            GatewayState::compile(cfg, None).map_err(|e| PyValueError::new_err(e.to_string()))?;
        let sample = CallRecord {
            ts_ms: unix_ms(),
            request_id: crate::request_id::new_id(),
            route: Some(Arc::from("items-api")),
            consumer: Some(Arc::from("alice")),
            method: Some(http::Method::GET),
            host: "api.example.com".into(),
            path: "/api/items/12345".into(),
            status: 200,
            latency_us: 1234,
            upstream_latency_us: 1000,
            bytes_in: 312,
            bytes_out: 2048,
            client_ip: Some("192.0.2.10".parse().expect("an IP")),
            upstream_addr: Some(Arc::from("127.0.0.1:9001")),
            error_kind: "",
            grpc_status: "",
            rate_limited: false,
            protocol: "HTTP/1.1",
            ..CallRecord::default()
        };
        Ok(HotPaths { state, sample })
    }

    /// The route name chosen for a request, or None (no route / method not allowed).
    fn route_match(&self, host: &str, path: &str, method: &str) -> PyResult<Option<String>> {
        let method = http::Method::from_bytes(method.as_bytes())
            .map_err(|_| PyValueError::new_err(format!("not an HTTP method: {method:?}")))?;
        Ok(match self.state.router.find(host, path, &method) {
            RouteMatch::Found(i) => Some(self.state.routes[i].name.to_string()),
            _ => None,
        })
    }

    /// The consumer owning `key`, or None.
    fn key_lookup(&self, key: &str) -> Option<String> {
        self.state
            .consumers
            .keys
            .lookup(key)
            .map(|i| self.state.consumers.names[i].to_string())
    }

    /// Take one token from `route`'s limiter for `key`; True if the request may pass.
    fn rate_limit_check(&self, route: &str, key: &str) -> PyResult<bool> {
        let limiter = self
            .state
            .routes
            .iter()
            .find(|r| &*r.name == route)
            .and_then(|r| r.plugins.find::<RateLimit>("rate-limit"))
            .ok_or_else(|| PyValueError::new_err(format!("route {route:?} has no rate-limit")))?;
        Ok(limiter.limiter.check(key, now_ns()).allowed)
    }

    /// Encode one typical call record; returns its size in bytes.
    fn encode_record(&self, format: &str) -> PyResult<usize> {
        let mut out = Vec::with_capacity(256);
        self.encode_sample(format, &mut out)?;
        Ok(out.len())
    }

    /// The same record's bytes, for tests that insert it into a store.
    fn sample_record<'py>(&self, py: Python<'py>, format: &str) -> PyResult<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(256);
        self.encode_sample(format, &mut out)?;
        Ok(PyBytes::new(py, &out))
    }
}

impl HotPaths {
    fn encode_sample(&self, format: &str, out: &mut Vec<u8>) -> PyResult<()> {
        match format {
            "RowBinary" => encode_row_binary(&self.sample, out),
            "JSONEachRow" => encode_json_row(&self.sample, out),
            other => {
                return Err(PyValueError::new_err(format!(
                    "format: expected RowBinary or JSONEachRow, got {other:?}"
                )))
            }
        }
        Ok(())
    }
}
