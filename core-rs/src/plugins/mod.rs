//! Plugins that run natively in the core. Each file holds one plugin with its logic and tests;
//! the config schema users write lives beside its Python twin in `pygate/plugins/`.

pub mod auth_failures;
pub mod basic_auth;
pub mod cors;
pub mod ip_restriction;
pub mod jwt;
pub mod jwt_time;
pub mod key_auth;
pub mod rate_limit;
