//! Plugins that run natively in the core. Each file is one plugin, as in Kong or APISIX: the
//! serde config the core reads, its validation (its `build`), its phase code (a `Plugin`
//! impl) and its tests. What users write (schema, defaults, file:line errors, the rules
//! between plugins by kind) is its Python twin, `pygate/plugins/native/<name>.py`, whose
//! `to_core` gives the value of `routes[].plugins.<name>` in the core config.
//!
//! Adding one: `<name>.rs` with a `pub fn build(&Build) -> Result<Box<dyn Plugin>, _>`, its
//! `pub mod` and its line in `REGISTRY` below, and `pygate/plugins/native/<name>.py`.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;

use http::header::{HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::de::DeserializeOwned;

use crate::config::{ConfigError, ConsumerConfig};
use crate::errors::Reject;

pub mod auth_failures;
pub mod basic_auth;
pub mod cluster_limit;
pub mod cors;
pub mod ip_restriction;
pub mod jwt;
pub mod jwt_time;
pub mod key_auth;
pub mod mtls;
pub mod rate_limit;

use basic_auth::BasicCredentials;
use key_auth::KeyTable;
use rate_limit::Decision;

/// Every native plugin by the name users write, in the order a route runs them within a
/// phase (auth plugins: the order they are tried; the first one a route has decides).
pub const REGISTRY: &[Registration] = &[
    Registration::new("ip-restriction", ip_restriction::build),
    Registration::new("cors", cors::build),
    Registration::new("key-auth", key_auth::build),
    Registration::new("basic-auth", basic_auth::build),
    Registration::new("jwt", jwt::build),
    Registration::new("mtls", mtls::build),
    Registration::new("rate-limit", rate_limit::build),
];

pub struct Registration {
    pub name: &'static str,
    pub build: fn(&Build<'_>) -> Result<Box<dyn Plugin>, ConfigError>,
}

impl Registration {
    const fn new(
        name: &'static str,
        build: fn(&Build<'_>) -> Result<Box<dyn Plugin>, ConfigError>,
    ) -> Registration {
        Registration { name, build }
    }
}

/// What a plugin's `build` gets: its config, where it is (for errors) and what it may need.
pub struct Build<'a> {
    pub config: &'a serde_json::Value,
    /// The config path of the plugin, e.g. `routes[2].plugins.rate-limit`.
    pub field: String,
    pub consumers: &'a Consumers,
    /// The same plugin of the same-named route in the config being replaced, if any: state
    /// worth keeping across a reload (rate-limit buckets) is taken from it.
    pub previous: Option<&'a dyn Plugin>,
    /// The route's name (cluster-wide limits key their Redis buckets by it).
    pub route: &'a str,
    /// `cluster.redis`'s hub, if the config has one.
    pub cluster: Option<&'a Arc<crate::cluster::Hub>>,
}

impl Build<'_> {
    /// The plugin's own config struct.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(self.config)
            .map_err(|e| ConfigError::new(&self.field, format!("invalid plugin config: {e}")))
    }

    /// The previous plugin (see `previous`) if it is of this type.
    pub fn previous<T: Plugin>(&self) -> Option<&T> {
        self.previous
            .and_then(|p| (p as &dyn Any).downcast_ref::<T>())
    }
}

/// A route's native plugin: one method per phase it may act in, in the order of a request
/// (pipeline/mod.rs). Each does nothing unless the plugin overrides it.
pub trait Plugin: Any + Send + Sync {
    /// Phase 3, guard: who may call at all. May refuse the call or answer it here.
    fn guard(&self, _request: &Guarded<'_>) -> Verdict {
        Verdict::Pass
    }

    /// Phase 4, authenticate: the plugin that finds the consumer, if this is one.
    fn authenticator(&self) -> Option<&dyn Authenticate> {
        None
    }

    /// Phase 5, rate limit: a token taken for the caller (refused: `allowed` is false).
    fn limit(&self, _caller: &Caller<'_>) -> Option<Decision> {
        None
    }

    /// Read when the route is found: what `respond` needs of the request (cors: the
    /// Origin), kept while the request is served. None: `respond` is not called.
    fn note(&self, _request: &HeaderMap) -> Option<HeaderValue> {
        None
    }

    /// Phase 8, on every answer of the route, refusals included: add headers.
    fn respond(&self, _note: &HeaderValue, _response: &mut HeaderMap) {}

    /// Housekeeping, every few seconds (server.rs): forget state that no longer matters.
    fn sweep(&self, _now_ns: u64) {}
}

/// What the guard phase sees of a request.
pub struct Guarded<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    /// The client address phase 3 settled on (the peer, or what its trusted proxy says).
    pub client_ip: IpAddr,
}

pub enum Verdict {
    Pass,
    Refuse(Reject),
    /// The gateway answers itself, with an empty body (a CORS preflight).
    Answer(StatusCode, HeaderMap),
}

/// An authentication plugin (phase 4).
pub trait Authenticate {
    /// The index in `consumers.names` of the consumer the request's credentials name, or
    /// why they were refused (401). Removes the credentials when it is configured to.
    fn authenticate(
        &self,
        headers: &mut HeaderMap,
        consumers: &Consumers,
    ) -> Result<Consumer, Reject>;

    /// As `authenticate`, knowing what the connection's TLS handshake verified (None: plain
    /// HTTP). Only a plugin that reads the connection (mtls) needs more than the headers.
    fn authenticate_on(
        &self,
        headers: &mut HeaderMap,
        consumers: &Consumers,
        _tls: Option<&crate::tls::TlsInfo>,
    ) -> Result<Consumer, Reject> {
        self.authenticate(headers, consumers)
    }
}

/// Who a request authenticated as.
pub enum Consumer {
    /// One of the config's consumers (by index in `Consumers::names`).
    Known(usize),
    /// Named by the credential itself (a JWT claim).
    Named(Arc<str>),
}

/// What the rate-limit phase knows of the caller.
pub struct Caller<'a> {
    pub consumer: Option<&'a str>,
    pub client_ip: Option<IpAddr>,
    pub route: &'a str,
}

/// The consumers' tables the auth plugins look credentials up in, built once per config.
#[derive(Default)]
pub struct Consumers {
    pub names: Vec<Arc<str>>,
    pub keys: KeyTable,
    pub basic: BasicCredentials,
}

impl Consumers {
    pub fn build(consumers: &[ConsumerConfig]) -> Result<Consumers, ConfigError> {
        Ok(Consumers {
            names: consumers
                .iter()
                .map(|c| Arc::from(c.name.as_str()))
                .collect(),
            keys: KeyTable::build(consumers)?,
            basic: BasicCredentials::build(consumers)?,
        })
    }
}

/// A route's native plugins, in `REGISTRY` order.
#[derive(Default)]
pub struct Plugins(Vec<(&'static str, Box<dyn Plugin>)>);

impl Plugins {
    /// `configs`: `routes[ri].plugins`; `previous`: the same-named route's in the config
    /// being replaced.
    pub fn build<'a>(
        configs: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
        route_field: &str,
        consumers: &Consumers,
        previous: Option<&Plugins>,
        route: &str,
        cluster: Option<&Arc<crate::cluster::Hub>>,
    ) -> Result<Plugins, ConfigError> {
        let mut built = Vec::new();
        for (name, config) in configs {
            let field = format!("{route_field}.plugins.{name}");
            let Some(at) = REGISTRY.iter().position(|r| r.name == name) else {
                let known: Vec<_> = REGISTRY.iter().map(|r| r.name).collect();
                return Err(ConfigError::new(
                    field,
                    format!(
                        "unknown native plugin; expected one of: {}",
                        known.join(", ")
                    ),
                ));
            };
            let registration = &REGISTRY[at];
            let build = Build {
                config,
                field,
                consumers,
                previous: previous.and_then(|p| p.get(registration.name)),
                route,
                cluster,
            };
            built.push((at, registration.name, (registration.build)(&build)?));
        }
        built.sort_by_key(|(at, _, _)| *at);
        Ok(Plugins(built.into_iter().map(|(_, n, p)| (n, p)).collect()))
    }

    pub fn iter(&self) -> impl Iterator<Item = &dyn Plugin> {
        self.0.iter().map(|(_, p)| &**p)
    }

    pub fn get(&self, name: &str) -> Option<&dyn Plugin> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, p)| &**p)
    }

    /// The plugin called `name` if it is of type `T`.
    pub fn find<T: Plugin>(&self, name: &str) -> Option<&T> {
        self.get(name)
            .and_then(|p| (p as &dyn Any).downcast_ref::<T>())
    }

    /// The route's authentication plugin: the first its plugins offer.
    pub fn authenticator(&self) -> Option<&dyn Authenticate> {
        self.iter().find_map(|p| p.authenticator())
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// What the route's plugins noted of a request for their `respond` (one slot per plugin:
/// a route has each plugin at most once, so at most `REGISTRY.len()`).
pub struct Notes([Option<HeaderValue>; REGISTRY.len()]);

impl Notes {
    pub fn take(plugins: &Plugins, request: &HeaderMap) -> Notes {
        let mut notes = Notes([const { None }; REGISTRY.len()]);
        for (slot, plugin) in notes.0.iter_mut().zip(plugins.iter()) {
            *slot = plugin.note(request);
        }
        notes
    }

    pub fn respond(&self, plugins: &Plugins, response: &mut HeaderMap) {
        for (note, plugin) in self.0.iter().zip(plugins.iter()) {
            if let Some(note) = note {
                plugin.respond(note, response);
            }
        }
    }
}
