//! TLS termination on rustls (ring provider; no OpenSSL).
//!
//! A listener with a `tls` section gets a `TlsSettings`: its rustls `ServerConfig` (the
//! certificates chosen by SNI, certs.rs; TLS 1.2/1.3; ALPN; optional client certificates)
//! and the handshake timeout. Settings are compiled with the rest of the config and live in
//! the swapped `GatewayState`, so a reload gives new handshakes the new certificates while
//! established connections keep the session they negotiated. accept.rs runs the handshake
//! and hands the connection server the stream plus a `TlsInfo`.

mod accept;
mod certs;
pub mod redirect;

use std::sync::Arc;
use std::time::Duration;

use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use serde::Deserialize;

pub use accept::{accept, Accepted};
pub use certs::CertStore;

use crate::config::ConfigError;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ListenerConfig {
    pub addr: String,
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The first one is the default certificate (for a name no certificate has, and for
    /// clients that send no SNI), unless `strict_sni`.
    pub certificates: Vec<CertificateConfig>,
    /// True: a handshake for an unknown name, or without SNI, is refused with an alert.
    #[serde(default)]
    pub strict_sni: bool,
    /// "1.2" (TLS 1.2 and 1.3) or "1.3" (1.3 only). Older versions are never offered.
    #[serde(default = "default_min_version")]
    pub min_version: String,
    #[serde(default = "default_handshake_timeout")]
    pub handshake_timeout_ms: u64,
    #[serde(default)]
    pub client_auth: Option<ClientAuthConfig>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CertificateConfig {
    /// PEM files: the certificate chain (leaf first) and its private key.
    pub cert: String,
    pub key: String,
    /// The SNI names it serves ("api.example.com", "*.example.com"); empty: the
    /// certificate's own DNS names (subjectAltName, else its common name).
    #[serde(default)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientAuthConfig {
    /// PEM file of the CA certificates that client certificates must chain to.
    pub ca: String,
    /// False: a client without a certificate may connect (routes with `mtls` refuse it).
    #[serde(default = "default_true")]
    pub required: bool,
}

fn default_min_version() -> String {
    "1.2".to_owned()
}

fn default_handshake_timeout() -> u64 {
    10_000
}

fn default_true() -> bool {
    true
}

/// What a TLS connection negotiated; the call record and the `mtls` auth read it.
#[derive(Debug, Clone, Default)]
pub struct TlsInfo {
    pub version: &'static str,
    pub sni: Option<Arc<str>>,
    pub alpn: &'static str,
    /// The verified client certificate's subject common name (else its whole subject).
    pub client_subject: Option<Arc<str>>,
}

pub struct TlsSettings {
    pub server: Arc<ServerConfig>,
    pub handshake_timeout: Duration,
    /// What a resumed session was authenticated against: the client CA file's bytes and
    /// `required` (None: no client certificates). A reload keeps the ticket keys and the
    /// session cache only while this is unchanged, so that a session resumed after a
    /// reload never carries a client identity the new config would not accept.
    resumption_scope: Option<(Vec<u8>, bool)>,
}

/// The ticket keys and the TLS 1.2 session-id cache: kept across reloads (`build`'s
/// `previous`) so that clients resume after a certificate renewal as nginx's do.
type Resumption = (
    Arc<dyn rustls::server::ProducesTickets>,
    Arc<dyn rustls::server::StoresServerSessions>,
);

fn resumption_from(
    previous: Option<&TlsSettings>,
    scope: &Option<(Vec<u8>, bool)>,
    field: &str,
) -> Result<Resumption, ConfigError> {
    if let Some(prev) = previous.filter(|p| &p.resumption_scope == scope) {
        return Ok((
            prev.server.ticketer.clone(),
            prev.server.session_storage.clone(),
        ));
    }
    let ticketer = rustls::crypto::ring::Ticketer::new()
        .map_err(|e| ConfigError::new(field, format!("cannot set up session tickets: {e}")))?;
    Ok((ticketer, rustls::server::ServerSessionMemoryCache::new(256)))
}

/// The ALPN protocols offered, most preferred first (h2 unless `http2.over_tls` is off).
const ALPN_H2: &[&[u8]] = &[b"h2", b"http/1.1"];
const ALPN_HTTP1: &[&[u8]] = &[b"http/1.1"];

impl TlsSettings {
    /// Reads and checks every file now: a config with a bad file is refused whole, naming it.
    /// `previous`: the same listener's settings before a reload (resumption carries over).
    pub fn build(
        config: &TlsConfig,
        field: &str,
        offer_h2: bool,
        previous: Option<&TlsSettings>,
    ) -> Result<TlsSettings, ConfigError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let store = CertStore::load(config, field, &provider)?;
        let versions: &[&'static rustls::SupportedProtocolVersion] =
            match config.min_version.as_str() {
                "1.2" => &[&rustls::version::TLS13, &rustls::version::TLS12],
                "1.3" => &[&rustls::version::TLS13],
                other => {
                    return Err(ConfigError::new(
                        format!("{field}.min_version"),
                        format!("expected \"1.2\" or \"1.3\", got {other:?}"),
                    ))
                }
            };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| ConfigError::new(format!("{field}.min_version"), e.to_string()))?;
        let builder = match &config.client_auth {
            None => builder.with_no_client_auth(),
            Some(auth) => {
                let field = format!("{field}.client_auth.ca");
                let roots = certs::load_roots(&auth.ca, &field)?;
                builder.with_client_cert_verifier(client_verifier(roots, auth, &provider, &field)?)
            }
        };
        let mut server = builder.with_cert_resolver(Arc::new(store));
        let alpn = if offer_h2 { ALPN_H2 } else { ALPN_HTTP1 };
        server.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        // The CA file is read again here (load_roots checked it): its bytes are the scope.
        let scope = config
            .client_auth
            .as_ref()
            .map(|auth| (std::fs::read(&auth.ca).unwrap_or_default(), auth.required));
        (server.ticketer, server.session_storage) = resumption_from(previous, &scope, field)?;
        if config.handshake_timeout_ms == 0 {
            return Err(ConfigError::new(
                format!("{field}.handshake_timeout_ms"),
                "expected a handshake timeout > 0",
            ));
        }
        Ok(TlsSettings {
            server: Arc::new(server),
            handshake_timeout: Duration::from_millis(config.handshake_timeout_ms),
            resumption_scope: scope,
        })
    }
}

fn client_verifier(
    roots: RootCertStore,
    auth: &ClientAuthConfig,
    provider: &Arc<rustls::crypto::CryptoProvider>,
    field: &str,
) -> Result<Arc<dyn rustls::server::danger::ClientCertVerifier>, ConfigError> {
    let builder = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
    let builder = if auth.required {
        builder
    } else {
        builder.allow_unauthenticated()
    };
    builder
        .build()
        .map_err(|e| ConfigError::new(field, format!("cannot use {} as client CA: {e}", auth.ca)))
}

#[cfg(test)]
mod tests;
