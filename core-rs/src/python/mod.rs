//! Everything between the core and Python, in two halves:
//!
//! - `bridge.rs` and `phases.rs` are the core's side of a route's Python plugins: the queue
//!   and wakeup socket a worker hands a call over on, and the `access`/`response` phases that
//!   wait for the verdict and apply it. Workers and the gateway state use them whether or not
//!   the binding is built, so they hold no pyo3 and are always compiled (`cargo test` links
//!   without libpython).
//! - `bindings/` is the `pygate._core` extension module itself (pyo3, typed in
//!   `pygate/_core.pyi`), built only with the `python` feature that maturin turns on.

pub mod bridge;
pub mod phases;

#[cfg(feature = "python")]
mod bindings;
