//! Plugins that run natively in the core. Each file is one plugin: the serde config the core
//! reads (re-exported by config.rs), its validation (`build` / `validate`), its phase code and
//! its tests. What users write (schema, defaults, file:line errors, the rules between plugins
//! by kind) is its Python twin, `pygate/plugins/<name>.py`.
//!
//! Adding one: this directory (the file and its `pub mod`), a field on `RouteConfig`
//! (config.rs) and `Route` (state.rs), its call in its phase (pipeline/mod.rs), and
//! `pygate/plugins/<name>.py` plus its name in `NATIVE_MODULES` (pygate/plugins/registry.py).

pub mod auth_failures;
pub mod basic_auth;
pub mod cors;
pub mod ip_restriction;
pub mod jwt;
pub mod jwt_time;
pub mod key_auth;
pub mod rate_limit;
