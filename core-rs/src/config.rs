//! The core config: what Python hands over after validating the user's YAML.
//!
//! Python owns the user-facing format (durations like "10s", friendly errors with file and line);
//! this is the plain, already-normalised shape. See `pygate/_core.pyi` for the JSON layout.

use std::collections::BTreeMap;

use serde::Deserialize;

// Each native plugin's config sits in its own file, with its validation and phase code; a
// route holds them by name (plugins/mod.rs's REGISTRY reads them). Re-exported: the
// consumers' credentials and `limits` are part of this file's shape.
pub use crate::conn_h2::Http2Config;
pub use crate::plugins::auth_failures::AuthFailureConfig;
pub use crate::plugins::basic_auth::BasicCredential;
pub use crate::tls::ListenerConfig;
pub use crate::upstream::health::{ActiveCheckConfig, ProbeKind};
pub use crate::upstream::transport::{Protocol, Scheme};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CoreConfig {
    /// One plain listener, as before `listeners` (kept for hand-written core configs).
    #[serde(default)]
    pub listen: Option<String>,
    /// Every listener (plain or TLS); `listen`, if given, comes first.
    #[serde(default)]
    pub listeners: Vec<ListenerConfig>,
    #[serde(default = "default_workers")]
    pub workers: usize,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default = "default_log_buffer")]
    pub log_buffer_capacity: usize,
    /// False: no call records are built or kept (counters still count).
    #[serde(default = "default_true")]
    pub record_calls: bool,
    #[serde(default)]
    pub upstreams: Vec<UpstreamConfig>,
    #[serde(default)]
    pub consumers: Vec<ConsumerConfig>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Cluster-wide state on Redis (cluster/mod.rs); null: every limit is the node's own.
    #[serde(default)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
    /// W3C trace context and OTLP span export (otlp/); None: propagation only.
    #[serde(default)]
    pub tracing: Option<crate::otlp::TracingConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_uri_bytes: usize,
    pub max_body_bytes: u64,
    /// From a request head's first byte (or, for a connection's first request, from the
    /// accept) to the head complete; then 408 (conn_idle.rs).
    pub header_timeout_ms: u64,
    /// How long a connection with no request in flight stays open (nginx's
    /// keepalive_timeout; HTTP/2 connections get GOAWAY).
    pub keepalive_timeout_ms: u64,
    /// The longest wait between two reads of a request body (nginx's client_body_timeout).
    pub client_body_timeout_ms: u64,
    /// The longest wait between two writes to a client that stopped reading (nginx's
    /// send_timeout): then the connection is closed.
    pub send_timeout_ms: u64,
    /// Failed authentications allowed per client address (plugins/auth_failures.rs);
    /// None: unlimited.
    pub auth_failures: Option<AuthFailureConfig>,
    /// HTTP/2 on client connections (conn_h2.rs).
    pub http2: Http2Config,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            max_uri_bytes: 8 * 1024,
            max_body_bytes: 10 * 1024 * 1024,
            header_timeout_ms: 60_000,
            keepalive_timeout_ms: 75_000,
            client_body_timeout_ms: 60_000,
            send_timeout_ms: 60_000,
            auth_failures: None,
            http2: Http2Config::default(),
        }
    }
}

/// How a request is read before it is routed: its path (path_normalise.rs) and the headers
/// the gateway owns (pipeline/forwarding.rs).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    pub merge_slashes: bool,
    pub escaped_slashes: EscapedSlashes,
    /// False: request headers with `_` in their name are dropped (CGI/WSGI upstreams read
    /// `X_User` as `X-User`).
    pub underscores_in_headers: bool,
    /// Peers (addresses or CIDR blocks) whose X-Forwarded-* / X-Real-IP / Forwarded are kept.
    pub trusted_proxies: Vec<String>,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Reject,
            underscores_in_headers: false,
            trusted_proxies: Vec::new(),
        }
    }
}

/// What `%2F`, `%5C` and `\` in a request path become (Envoy's
/// `path_with_escaped_slashes_action`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum EscapedSlashes {
    /// 400: an upstream may read them as separators, the router does not.
    #[default]
    Reject,
    /// Forwarded as data (escapes upper-cased); safe only if the upstream does not decode them.
    Keep,
    /// Decoded to `/` before dot-segments are resolved.
    Decode,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    pub name: String,
    pub targets: Vec<TargetConfig>,
    #[serde(default)]
    pub balance: Balance,
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_ms: u64,
    #[serde(default = "default_read_timeout")]
    pub read_timeout_ms: u64,
    #[serde(default = "default_retries")]
    pub retries: u32,
    #[serde(default = "default_max_fails")]
    pub max_fails: u32,
    #[serde(default = "default_fail_cooldown")]
    pub fail_cooldown_ms: u64,
    #[serde(default = "default_keepalive")]
    pub keepalive: usize,
    // How targets are reached (upstream/transport.rs).
    #[serde(default)]
    pub scheme: Scheme,
    #[serde(default)]
    pub protocol: Protocol,
    /// PEM roots that replace the system's (absolute: Python resolves it against the file).
    #[serde(default)]
    pub ca_file: Option<String>,
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// The TLS name to send and verify instead of each target's host.
    #[serde(default)]
    pub sni: Option<String>,
    /// Active health checks (upstream/health.rs); None: passive health only.
    #[serde(default)]
    pub health_check: Option<ActiveCheckConfig>,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            name: String::new(),
            targets: Vec::new(),
            balance: Balance::default(),
            connect_timeout_ms: default_connect_timeout(),
            read_timeout_ms: default_read_timeout(),
            retries: default_retries(),
            max_fails: default_max_fails(),
            fail_cooldown_ms: default_fail_cooldown(),
            keepalive: default_keepalive(),
            scheme: Scheme::default(),
            protocol: Protocol::default(),
            ca_file: None,
            tls_verify: true,
            sni: None,
            health_check: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    pub addr: String,
    #[serde(default = "default_weight")]
    pub weight: u32,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum Balance {
    #[default]
    RoundRobin,
    Weighted,
    LeastConn,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct ConsumerConfig {
    pub name: String,
    #[serde(default)]
    pub keys: Vec<String>,
    #[serde(default)]
    pub basic_auth: Vec<BasicCredential>,
}

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    #[serde(default)]
    pub hosts: Vec<String>,
    pub paths: Vec<String>,
    #[serde(default)]
    pub methods: Vec<String>,
    pub upstream: String,
    #[serde(default)]
    pub preserve_host: bool,
    /// Calls over plain HTTP get a 308 to https:// on this port (tls/redirect.rs).
    #[serde(default)]
    pub https_redirect_port: Option<u16>,
    /// Native plugins by name ("key-auth"), each with its own config (plugins/<name>.rs).
    #[serde(default)]
    pub plugins: BTreeMap<String, serde_json::Value>,
    /// Which phases the route's Python plugins implement; null: the route never calls Python.
    #[serde(default)]
    pub python: Option<PythonPhasesConfig>,
    /// Headers set on every request sent upstream (e.g. a secret an internal upstream checks).
    #[serde(default)]
    pub inject_headers: Vec<(String, String)>,
    /// WebSocket handshakes are proxied as WebSockets (upgrade/); null: their Upgrade
    /// headers are dropped like any hop-by-hop header.
    #[serde(default)]
    pub websocket: Option<WebSocketConfig>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    pub idle_timeout_ms: u64,
    pub max_lifetime_ms: u64,
    /// Bytes of one frame's payload; a larger frame closes the socket with 1009.
    pub max_frame_size: u64,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct PythonPhasesConfig {
    #[serde(default)]
    pub access: bool,
    #[serde(default)]
    pub response: bool,
    #[serde(default)]
    pub log: bool,
    pub timeout_ms: u64,
}

fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}
fn default_log_buffer() -> usize {
    262_144
}
fn default_connect_timeout() -> u64 {
    3_000
}
fn default_read_timeout() -> u64 {
    60_000
}
fn default_retries() -> u32 {
    2
}
fn default_max_fails() -> u32 {
    1
}
fn default_fail_cooldown() -> u64 {
    10_000
}
fn default_keepalive() -> usize {
    256
}
fn default_weight() -> u32 {
    1
}
/// For the `#[serde(default = ...)]` of flags that are on unless set (plugins use it too).
pub(crate) fn default_true() -> bool {
    true
}

/// A config problem with the path of the field that caused it, e.g. `routes[1].paths[0]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl std::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

pub fn parse(json: &str) -> Result<CoreConfig, ConfigError> {
    serde_json::from_str(json)
        .map_err(|e| ConfigError::new("", format!("invalid core config: {e}")))
}
