//! The compiled config ("gateway state") and what lives across configs ("shared").
//!
//! A config is compiled once into lookup structures and swapped in atomically with `arc-swap`.
//! Each request loads the state once, so a request in flight finishes on the config it started
//! with. Things that must survive a reload (connection pools, target health, rate-limit buckets
//! of an unchanged limit) are carried over from the previous state while compiling.
//!
//! Compiling trusts what Python validated (pygate/config/, with file:line errors) for the
//! rules between plugins: one auth plugin per route, rate-limit by consumer needs one,
//! basic-auth needs a consumer with credentials. They are Python's alone, written once by
//! plugin kind (pygate/plugins/registry.py); a config that broke them would still be served
//! fail-closed (the first auth plugin the core tries decides, one shared bucket, every call
//! refused). Each plugin's own `build` (plugins/<name>.rs) checks the values the core parses
//! or relies on: addresses, origins, JWKs, header values, a rate > 0; Python does not check
//! them again (its core stage, core_check.py, gives them their file:line).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use http::{HeaderName, HeaderValue};

use crate::config::{ConfigError, CoreConfig, Limits, PythonPhasesConfig, WebSocketConfig};
use crate::pipeline::ownership::RequestRules;
use crate::plugins::auth_failures::AuthFailures;
use crate::plugins::{Consumers, Plugins};
use crate::python::bridge::Bridge;
use crate::records::RecordBuffer;
use crate::route_metrics::RouteMetrics;
use crate::router::Router;
use crate::stats::Stats;
use crate::tls::TlsSettings;
use crate::upstream::{Target, Upstream};
use crate::upstream_metrics::UpstreamMetrics;

pub struct Route {
    pub name: Arc<str>,
    pub upstream: Arc<Upstream>,
    pub preserve_host: bool,
    pub https_redirect_port: Option<u16>,
    /// Its native plugins, in the order they run (plugins/mod.rs).
    pub plugins: Plugins,
    /// Where its calls are counted for /metrics (route_metrics.rs).
    pub metrics_slot: u16,
    pub python: Option<PythonPhasesConfig>,
    pub inject_headers: Vec<(HeaderName, HeaderValue)>,
    pub websocket: Option<WebSocketConfig>,
}

/// A listener as the accept loop sees it; the address never changes on a reload, its TLS
/// settings (certificates) may.
pub struct Listener {
    pub addr: SocketAddr,
    pub tls: Option<Arc<TlsSettings>>,
}

pub struct GatewayState {
    pub config: CoreConfig,
    pub listeners: Vec<Listener>,
    pub limits: Limits,
    /// How requests are read before routing (path normalisation, owned headers).
    pub http: RequestRules,
    pub record_calls: bool,
    pub router: Router,
    pub routes: Vec<Route>,
    pub upstreams: Vec<Arc<Upstream>>,
    /// The consumers' names and credentials, which auth plugins look up.
    pub consumers: Consumers,
    /// Failed authentications per client address (`limits.auth_failures`).
    pub auth_failures: Option<Arc<AuthFailures>>,
    /// Per-route counters, the same for the life of the process (carried over).
    pub route_metrics: Arc<RouteMetrics>,
    /// Per-upstream-target counters, the same for the life of the process (carried over).
    pub upstream_metrics: Arc<UpstreamMetrics>,
    /// `cluster.redis` (cluster-wide rate limits), started when the state serves.
    pub cluster: Option<Arc<crate::cluster::Hub>>,
}

impl GatewayState {
    /// Called when this state starts serving (the first, or a reload's): the cluster hub
    /// connects; the one it replaces stops unless it is the same.
    pub fn serving(&self, replaced: Option<&GatewayState>) {
        if let Some(old) = replaced.and_then(|p| p.cluster.as_ref()) {
            if self.cluster.as_ref().is_none_or(|h| !Arc::ptr_eq(h, old)) {
                old.stop();
            }
        }
        if let Some(hub) = &self.cluster {
            hub.start();
        }
    }
}

/// Everything the workers share for the life of the process.
pub struct Shared {
    pub state: ArcSwap<GatewayState>,
    pub bridge: Bridge,
    pub records: RecordBuffer,
    pub stats: Stats,
    /// The states' per-route counters (one registry for the life of the process).
    pub route_metrics: Arc<RouteMetrics>,
    /// Finished sampled calls waiting for the OTLP exporter (otlp/).
    pub spans: crate::otlp::SpanQueue,
    pub workers: usize,
}

impl Shared {
    pub fn new(state: GatewayState) -> std::io::Result<Shared> {
        let workers = state.config.workers;
        state.serving(None);
        Ok(Shared {
            bridge: Bridge::new()?,
            records: RecordBuffer::new(state.config.log_buffer_capacity),
            stats: Stats::new(workers),
            route_metrics: state.route_metrics.clone(),
            spans: crate::otlp::SpanQueue::default(),
            workers,
            state: ArcSwap::from_pointee(state),
        })
    }
}

fn unique_names<'a>(
    section: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<HashMap<&'a str, usize>, ConfigError> {
    let mut seen = HashMap::new();
    for (i, name) in names.enumerate() {
        if name.is_empty() {
            return Err(ConfigError::new(
                format!("{section}[{i}].name"),
                "expected a non-empty name",
            ));
        }
        if let Some(first) = seen.insert(name, i) {
            return Err(ConfigError::new(
                format!("{section}[{i}].name"),
                format!("duplicate name {name:?} (also {section}[{first}])"),
            ));
        }
    }
    Ok(seen)
}

/// `previous`: the listeners before a reload; a TLS listener on the same address keeps its
/// session ticket keys and session cache (tls/mod.rs).
fn compile_listeners(
    config: &CoreConfig,
    previous: Option<&GatewayState>,
) -> Result<Vec<Listener>, ConfigError> {
    let plain = config
        .listen
        .iter()
        .map(|addr| ("listen".to_owned(), addr, None));
    let listed = config
        .listeners
        .iter()
        .enumerate()
        .map(|(i, l)| (format!("listeners[{i}]"), &l.addr, l.tls.as_ref()));
    let mut listeners: Vec<Listener> = Vec::new();
    for (field, addr, tls) in plain.chain(listed) {
        let addr: SocketAddr = addr.parse().map_err(|_| {
            let field = if field == "listen" {
                field.clone()
            } else {
                format!("{field}.addr")
            };
            ConfigError::new(
                field,
                format!("expected host:port with an IP address, got {addr:?}"),
            )
        })?;
        if listeners.iter().any(|l| l.addr == addr && addr.port() != 0) {
            return Err(ConfigError::new(
                format!("{field}.addr"),
                format!("{addr} is listed twice"),
            ));
        }
        let tls = match tls {
            Some(t) => {
                let offer_h2 = config.limits.http2.over_tls;
                let before = previous
                    .and_then(|p| p.listeners.iter().find(|l| l.addr == addr))
                    .and_then(|l| l.tls.as_deref());
                let settings = TlsSettings::build(t, &format!("{field}.tls"), offer_h2, before)?;
                Some(Arc::new(settings))
            }
            None => None,
        };
        listeners.push(Listener { addr, tls });
    }
    if listeners.is_empty() {
        return Err(ConfigError::new(
            "listeners",
            "expected at least one listener",
        ));
    }
    Ok(listeners)
}

impl GatewayState {
    /// The listener addresses, in order (a reload must keep them).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listeners.iter().map(|l| l.addr).collect()
    }

    pub fn compile(
        config: CoreConfig,
        previous: Option<&GatewayState>,
    ) -> Result<GatewayState, ConfigError> {
        let listeners = compile_listeners(&config, previous)?;
        if config.workers == 0 {
            return Err(ConfigError::new("workers", "expected at least 1 worker"));
        }
        let upstream_index = unique_names("upstreams", config.upstreams.iter().map(|u| &*u.name))?;
        unique_names("routes", config.routes.iter().map(|r| &*r.name))?;
        let consumers = Consumers::build(&config.consumers)?;
        let cluster = crate::cluster::install(
            config.cluster.as_ref(),
            previous.and_then(|p| p.cluster.as_ref()),
        )?;

        let mut old_targets: HashMap<&str, Arc<Target>> = HashMap::new();
        let mut old_routes: HashMap<&str, &Route> = HashMap::new();
        if let Some(prev) = previous {
            for upstream in &prev.upstreams {
                for t in &upstream.targets {
                    old_targets.insert(&t.pool_key, t.clone());
                }
            }
            for route in &prev.routes {
                old_routes.insert(&route.name, route);
            }
        }

        let upstream_metrics = previous.map_or_else(
            || Arc::new(UpstreamMetrics::new(config.workers)),
            |p| p.upstream_metrics.clone(),
        );
        let mut upstreams = Vec::with_capacity(config.upstreams.len());
        for (i, u) in config.upstreams.iter().enumerate() {
            let mut built = Upstream::build(i, u, |addr, transport| {
                match old_targets.get(&*transport.pool_key(addr)) {
                    Some(t) => {
                        t.set_max_idle(u.keepalive);
                        t.clone()
                    }
                    None => Arc::new(Target::new(
                        addr,
                        transport.clone(),
                        config.workers,
                        u.keepalive,
                    )),
                }
            })?;
            // Probe states are the upstream's own (by name), not the shared target's.
            if let Some(prev) = previous.and_then(|p| p.upstreams.iter().find(|p| p.name == u.name))
            {
                built.keep_health_of(prev);
            }
            built.count_into(&upstream_metrics);
            upstreams.push(Arc::new(built));
        }

        let route_metrics = previous.map_or_else(
            || Arc::new(RouteMetrics::new(config.workers)),
            |p| p.route_metrics.clone(),
        );
        let mut routes = Vec::with_capacity(config.routes.len());
        for (ri, r) in config.routes.iter().enumerate() {
            let Some(&ui) = upstream_index.get(&*r.upstream) else {
                let mut known: Vec<_> = upstream_index.keys().copied().collect();
                known.sort();
                return Err(ConfigError::new(
                    format!("routes[{ri}].upstream"),
                    format!(
                        "unknown upstream {:?}; expected one of: {}",
                        r.upstream,
                        known.join(", ")
                    ),
                ));
            };
            let plugins = Plugins::build(
                &r.plugins,
                &format!("routes[{ri}]"),
                &consumers,
                old_routes.get(&*r.name).map(|old| &old.plugins),
                &r.name,
                cluster.as_ref(),
            )?;
            if r.python.as_ref().is_some_and(|p| p.timeout_ms == 0) {
                return Err(ConfigError::new(
                    format!("routes[{ri}].python.timeout_ms"),
                    "expected a plugin timeout > 0",
                ));
            }
            let mut inject_headers = Vec::with_capacity(r.inject_headers.len());
            for (hi, (name, value)) in r.inject_headers.iter().enumerate() {
                let field = format!("routes[{ri}].inject_headers[{hi}]");
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| ConfigError::new(&field, "expected a valid header name"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| ConfigError::new(&field, "expected a valid header value"))?;
                inject_headers.push((name, value));
            }
            if let Some(ws) = &r.websocket {
                check_websocket(ri, ws, &upstreams[ui])?;
            }
            routes.push(Route {
                plugins,
                websocket: r.websocket,
                python: r.python.clone(),
                inject_headers,
                name: Arc::from(r.name.as_str()),
                upstream: upstreams[ui].clone(),
                preserve_host: r.preserve_host,
                https_redirect_port: r.https_redirect_port,
                metrics_slot: route_metrics.slot_for(&r.name),
            });
        }

        if let Some(t) = &config.tracing {
            t.check()?;
        }
        let http = RequestRules::build(&config.http)?;
        let router = Router::build(&config.routes, http.path)?;
        // Same limit: keep the counts, so a reload is not a free reset for a guesser.
        let auth_failures = config.limits.auth_failures.as_ref().map(|c| {
            match previous.and_then(|p| p.auth_failures.as_ref()) {
                Some(old) if old.config == *c => old.clone(),
                _ => Arc::new(AuthFailures::new(c.clone())),
            }
        });
        Ok(GatewayState {
            listeners,
            limits: config.limits.clone(),
            http,
            record_calls: config.record_calls,
            router,
            routes,
            upstreams,
            consumers,
            auth_failures,
            route_metrics,
            upstream_metrics,
            cluster,
            config,
        })
    }
}

/// A WebSocket needs positive limits and an HTTP/1.1 upstream: an HTTP/2 connection has no
/// Upgrade (RFC 8441's extended CONNECT is not offered by the upstream client).
fn check_websocket(
    ri: usize,
    ws: &WebSocketConfig,
    upstream: &Upstream,
) -> Result<(), ConfigError> {
    for (field, value) in [
        ("idle_timeout_ms", ws.idle_timeout_ms),
        ("max_lifetime_ms", ws.max_lifetime_ms),
        ("max_frame_size", ws.max_frame_size),
    ] {
        if value == 0 {
            return Err(ConfigError::new(
                format!("routes[{ri}].websocket.{field}"),
                "expected a value > 0",
            ));
        }
    }
    if upstream.targets.iter().any(|t| t.transport.multiplexed()) {
        return Err(ConfigError::new(
            format!("routes[{ri}].websocket"),
            "expected an upstream with protocol http1 (WebSockets are proxied over HTTP/1.1)",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;
    use crate::plugins::rate_limit::RateLimit;

    fn compile(json: &str) -> Result<GatewayState, ConfigError> {
        GatewayState::compile(parse(json).unwrap(), None)
    }

    const BASE: &str = r#"{"listen":"127.0.0.1:0","workers":1,
        "upstreams":[{"name":"u","targets":[{"addr":"127.0.0.1:9"}]}],
        "consumers":[{"name":"alice","keys":["k"]}],
        "routes":[{"name":"r","paths":["/"],"upstream":"u",
                   "plugins":{"key-auth":{"hide_credentials":true},
                     "rate-limit":{"rate":5,"per_ms":1000,"by":"consumer"}}}]}"#;

    fn limiter(state: &GatewayState) -> &Arc<crate::plugins::rate_limit::RateLimiter> {
        &state.routes[0]
            .plugins
            .find::<RateLimit>("rate-limit")
            .unwrap()
            .limiter
    }

    #[test]
    fn compiles_a_valid_config() {
        let s = compile(BASE).unwrap();
        assert_eq!(s.routes.len(), 1);
        assert_eq!(s.consumers.keys.lookup("k"), Some(0));
        // In REGISTRY order, whatever the order of the config.
        assert_eq!(s.routes[0].plugins.len(), 2);
        assert!(s.routes[0].plugins.authenticator().is_some());
    }

    #[test]
    fn unknown_upstream_names_the_field_and_choices() {
        let e = compile(&BASE.replace(r#""upstream":"u""#, r#""upstream":"nope""#))
            .err()
            .unwrap();
        assert_eq!(e.path, "routes[0].upstream");
        assert!(e.message.contains("expected one of: u"), "{e}");
    }

    #[test]
    fn key_auth_without_consumer_keys_refuses_every_call() {
        // Python refuses such a config (pygate/plugins/native/key_auth.py); served anyway,
        // it fails closed.
        let s = compile(&BASE.replace(r#""keys":["k"]"#, r#""keys":[]"#)).unwrap();
        let mut headers = http::HeaderMap::new();
        headers.insert("apikey", http::HeaderValue::from_static("k"));
        let auth = s.routes[0].plugins.authenticator().unwrap();
        assert!(auth.authenticate(&mut headers, &s.consumers).is_err());
    }

    #[test]
    fn unknown_native_plugins_name_the_field_and_choices() {
        let e = compile(&BASE.replace(r#""key-auth""#, r#""key-oath""#))
            .err()
            .unwrap();
        assert_eq!(e.path, "routes[0].plugins.key-oath");
        assert!(
            e.message
                .contains("expected one of: ip-restriction, cors, key-auth,"),
            "{e}"
        );
        let e = compile(&BASE.replace(r#""rate":5"#, r#""rate":"5""#))
            .err()
            .unwrap();
        assert_eq!(e.path, "routes[0].plugins.rate-limit");
    }

    #[test]
    fn bad_listen_is_reported() {
        let e = compile(&BASE.replace("127.0.0.1:0", "localhost"))
            .err()
            .unwrap();
        assert_eq!(e.path, "listen");
    }

    #[test]
    fn reload_keeps_unchanged_limiters_and_targets() {
        let first = compile(BASE).unwrap();
        let second = GatewayState::compile(parse(BASE).unwrap(), Some(&first)).unwrap();
        assert!(Arc::ptr_eq(limiter(&first), limiter(&second)));
        assert!(Arc::ptr_eq(
            &first.routes[0].upstream.targets[0],
            &second.routes[0].upstream.targets[0]
        ));
        let changed = BASE.replace(r#""rate":5"#, r#""rate":6"#);
        let third = GatewayState::compile(parse(&changed).unwrap(), Some(&second)).unwrap();
        assert!(!Arc::ptr_eq(limiter(&second), limiter(&third)));
    }
}
