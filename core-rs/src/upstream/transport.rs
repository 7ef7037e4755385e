//! How a target is reached: plain TCP or TLS (rustls), then HTTP/1.1 or HTTP/2.
//!
//! TLS verifies the upstream's certificate against the system's roots, or against `ca_file`
//! alone when one is given, for the name in `sni` (else the target's host). `tls_verify: false`
//! is the only way to skip that, and Python logs it at every load (pygate/config/loader.py).

use std::hash::{Hash, Hasher};
use std::sync::{Arc, OnceLock};

use http::uri::{Authority, Scheme as UriScheme};
use http::{Request, Uri};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::pool::{ConnectError, Sender};
use crate::body::RequestBody;
use crate::config::{ConfigError, UpstreamConfig};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    #[default]
    Http,
    Https,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default, Hash)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Http1,
    /// HTTP/2 over TLS, agreed by ALPN.
    H2,
    /// HTTP/2 over plain TCP with prior knowledge (what gRPC servers speak without TLS).
    H2c,
}

pub struct Transport {
    pub scheme: Scheme,
    pub protocol: Protocol,
    tls: Option<Tls>,
    /// Everything that decides how a connection is made, so that targets (and their pooled
    /// connections) are shared across reloads only between upstreams that connect alike.
    fingerprint: u64,
}

struct Tls {
    connector: TlsConnector,
    /// `sni`: the name sent and verified instead of each target's host.
    name: Option<ServerName<'static>>,
}

impl Transport {
    pub fn plain() -> Transport {
        Transport {
            scheme: Scheme::Http,
            protocol: Protocol::Http1,
            tls: None,
            fingerprint: 0,
        }
    }

    pub fn build(index: usize, cfg: &UpstreamConfig) -> Result<Transport, ConfigError> {
        let field = |f: &str| format!("upstreams[{index}].{f}");
        let mut hasher = std::hash::DefaultHasher::new();
        (cfg.scheme, cfg.protocol, &cfg.sni, cfg.tls_verify, &cfg.ca_file).hash(&mut hasher);
        let tls = match (cfg.scheme, cfg.protocol) {
            (Scheme::Http, Protocol::H2) => {
                return Err(ConfigError::new(
                    field("protocol"),
                    "h2 is HTTP/2 over TLS and needs scheme: https; use h2c for HTTP/2 without TLS",
                ))
            }
            (Scheme::Https, Protocol::H2c) => {
                return Err(ConfigError::new(
                    field("protocol"),
                    "h2c is HTTP/2 without TLS; with scheme: https use h2",
                ))
            }
            (Scheme::Http, _) => {
                for (f, set) in [
                    ("ca_file", cfg.ca_file.is_some()),
                    ("sni", cfg.sni.is_some()),
                    ("tls_verify", !cfg.tls_verify),
                ] {
                    if set {
                        return Err(ConfigError::new(field(f), "only applies with scheme: https"));
                    }
                }
                None
            }
            (Scheme::Https, _) => {
                let roots = match &cfg.ca_file {
                    Some(path) if cfg.tls_verify => {
                        let pem = std::fs::read(path).map_err(|e| {
                            ConfigError::new(field("ca_file"), format!("cannot read {path}: {e}"))
                        })?;
                        pem.hash(&mut hasher);
                        Some(Arc::new(roots_from_pem(&pem).map_err(|m| {
                            ConfigError::new(field("ca_file"), format!("{path}: {m}"))
                        })?))
                    }
                    Some(_) => {
                        return Err(ConfigError::new(
                            field("ca_file"),
                            "expected no ca_file with tls_verify: false (nothing is verified)",
                        ))
                    }
                    None if cfg.tls_verify => Some(system_roots()),
                    None => None,
                };
                let name = match &cfg.sni {
                    Some(sni) => Some(server_name(sni).ok_or_else(|| {
                        ConfigError::new(field("sni"), format!("expected a host name, got {sni:?}"))
                    })?),
                    None => None,
                };
                let config = client_config(roots, cfg.protocol);
                Some(Tls {
                    connector: TlsConnector::from(Arc::new(config)),
                    name,
                })
            }
        };
        Ok(Transport {
            scheme: cfg.scheme,
            protocol: cfg.protocol,
            tls,
            fingerprint: hasher.finish(),
        })
    }

    /// The name pooled targets are found by across reloads.
    pub fn pool_key(&self, addr: &str) -> String {
        format!("{addr}#{:x}", self.fingerprint)
    }

    /// One connection carries many requests at once: the pool shares it.
    pub fn multiplexed(&self) -> bool {
        self.protocol != Protocol::Http1
    }

    /// The TLS name for a target at `addr` (host:port), or why it has none.
    pub fn server_name_for(&self, addr: &str) -> Result<Option<ServerName<'static>>, String> {
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        if let Some(name) = &tls.name {
            return Ok(Some(name.clone()));
        }
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        server_name(host)
            .map(Some)
            .ok_or_else(|| format!("{host:?} is not a name TLS can verify; set sni"))
    }

    pub async fn connect(
        &self,
        addr: &str,
        name: Option<&ServerName<'static>>,
    ) -> Result<Sender, ConnectError> {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|_| ConnectError::Failed)?;
        stream.set_nodelay(true).map_err(|_| ConnectError::Failed)?;
        match (&self.tls, name) {
            (Some(tls), Some(name)) => {
                let stream = tls
                    .connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|_| ConnectError::Tls)?;
                handshake(stream, self.protocol).await
            }
            _ => handshake(stream, self.protocol).await,
        }
    }

    /// HTTP/2 names the authority and scheme in the request itself; HTTP/1.1 keeps the
    /// origin-form target and the Host header.
    pub fn prepare(&self, req: &mut Request<RequestBody>) {
        if !self.multiplexed() {
            return;
        }
        let headers = req.headers_mut();
        let authority = headers
            .remove(http::header::HOST)
            .and_then(|h| Authority::try_from(h.as_bytes()).ok());
        // gRPC servers refuse calls whose client does not say it takes trailers; the client's
        // own `te` went with the hop-by-hop headers, and the response's trailers are relayed.
        let grpc = headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
        if grpc {
            headers.insert(http::header::TE, http::HeaderValue::from_static("trailers"));
        }
        let mut parts = req.uri().clone().into_parts();
        parts.scheme = Some(match self.scheme {
            Scheme::Http => UriScheme::HTTP,
            Scheme::Https => UriScheme::HTTPS,
        });
        // A retry on another target finds the Host already moved into the URI.
        parts.authority = authority
            .or(parts.authority)
            .or_else(|| Authority::try_from("localhost").ok());
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *req.uri_mut() = uri;
        }
    }
}

async fn handshake<T>(io: T, protocol: Protocol) -> Result<Sender, ConnectError>
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    // The connection tasks run on the worker's own runtime (tokio::spawn on a current-thread
    // runtime stays on it). Their errors surface to the request that was using them.
    match protocol {
        Protocol::Http1 => {
            let (sender, conn) = http1::Builder::new()
                .handshake(io)
                .await
                .map_err(|_| ConnectError::Failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H1(sender))
        }
        Protocol::H2 | Protocol::H2c => {
            let (sender, conn) = http2::Builder::new(TokioExecutor::new())
                .handshake(io)
                .await
                .map_err(|_| ConnectError::Failed)?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            Ok(Sender::H2(sender))
        }
    }
}

fn server_name(host: &str) -> Option<ServerName<'static>> {
    ServerName::try_from(host.to_owned()).ok()
}

fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// The OS's trusted roots, read once per process (they change with the OS, not the config).
/// None found makes every verification fail, which the call log names `upstream_tls`.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            Arc::new(roots)
        })
        .clone()
}

fn roots_from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|e| format!("expected PEM certificates: {e}"))?;
        roots
            .add(cert)
            .map_err(|e| format!("not a usable CA certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err("expected at least one PEM certificate (-----BEGIN CERTIFICATE-----)".into());
    }
    Ok(roots)
}

/// `roots`: None when verification is off.
fn client_config(roots: Option<Arc<RootCertStore>>, protocol: Protocol) -> ClientConfig {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default TLS versions");
    let mut config = match roots {
        Some(roots) => builder.with_root_certificates(roots).with_no_client_auth(),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
            .with_no_client_auth(),
    };
    config.alpn_protocols = match protocol {
        Protocol::H2 => vec![b"h2".to_vec()],
        _ => vec![b"http/1.1".to_vec()],
    };
    config
}

/// `tls_verify: false`: any certificate for any name is accepted. The handshake's signatures
/// are still checked, so the connection is encrypted to whoever holds that certificate's key.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
