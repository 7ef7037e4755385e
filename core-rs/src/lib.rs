//! pygate's data plane. `pipeline.rs` shows a request's life phase by phase; `python.rs` is the
//! whole boundary with Python (see also `pygate/_core.pyi`).

pub mod bench;
pub mod body;
pub mod bridge;
pub mod clock;
pub mod config;
pub mod conn_io;
pub mod errors;
pub mod native;
pub mod path_normalise;
pub mod pipeline;
pub mod plugins;
pub mod proxy;
pub mod python_phases;
pub mod records;
pub mod request_body;
pub mod request_id;
pub mod route_metrics;
pub mod router;
pub mod server;
pub mod state;
pub mod stats;
pub mod upstream;

#[cfg(feature = "python")]
mod python;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

// The hot path allocates small, short-lived buffers per request (headers, ids, records);
// mimalloc's thread-local free lists serve those faster than glibc malloc.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
