//! pygate's data plane. `pipeline/mod.rs` shows a request's life phase by phase. `python/` is
//! the whole boundary with Python: its `bridge.rs` and `phases.rs` (how a route's Python plugins
//! get a call and how their verdict is applied) are always compiled, because the workers use
//! them; its `bindings/` (the pyo3 module `pygate._core`, see `pygate/_core.pyi`) only with the
//! `python` feature, so `cargo test` links without libpython. `records.rs` and `records/` are
//! the call record from its `CallLog` to its RowBinary, JSONEachRow and ClickHouse Native bytes.

pub mod bench;
pub mod body;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod conn;
pub mod conn_h2;
pub mod conn_idle;
pub mod conn_io;
pub mod errors;
pub mod grpc;
pub mod otlp;
pub mod path_normalise;
pub mod pipeline;
pub mod plugins;
pub mod proxy;
pub mod python;
pub mod records;
pub mod request_id;
pub mod route_metrics;
pub mod router;
pub mod server;
pub mod state;
pub mod stats;
pub mod text;
pub mod tls;
pub mod tokens;
pub mod trace_context;
pub mod upgrade;
pub mod upstream;
pub mod upstream_metrics;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// The hot path allocates small, short-lived buffers per request (headers, ids, records);
// mimalloc's thread-local free lists serve those faster than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
