//! How a target is reached: plain TCP or TLS (rustls), then HTTP/1.1 or HTTP/2.
//!
//! TLS verifies the upstream's certificate against the system's roots, or against `ca_file`
//! alone when one is given, for the name in `sni` (else the target's host). `tls_verify: false`
//! is the only way to skip that, and serving logs it at every load (pygate/server/serve.py).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use http::uri::{Authority, Scheme as UriScheme};
use http::{Request, Uri};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::pool::{ConnectError, Sender};
use super::tls::{client_config, roots_from_pem, system_roots};
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
        (
            cfg.scheme,
            cfg.protocol,
            &cfg.sni,
            cfg.tls_verify,
            &cfg.ca_file,
        )
            .hash(&mut hasher);
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
                        return Err(ConfigError::new(
                            field(f),
                            "only applies with scheme: https",
                        ));
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
            // with_upgrades: a WebSocket handshake's 101 hands the stream to upgrade/.
            tokio::spawn(async move {
                let _ = conn.with_upgrades().await;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(scheme: Scheme, protocol: Protocol) -> UpstreamConfig {
        UpstreamConfig {
            scheme,
            protocol,
            ..UpstreamConfig::default()
        }
    }

    #[test]
    fn each_http2_flavour_needs_its_scheme() {
        let e = Transport::build(2, &cfg(Scheme::Http, Protocol::H2))
            .err()
            .unwrap();
        assert_eq!(e.path, "upstreams[2].protocol");
        let e = Transport::build(0, &cfg(Scheme::Https, Protocol::H2c))
            .err()
            .unwrap();
        assert_eq!(e.path, "upstreams[0].protocol");
        let mut plain_with_sni = cfg(Scheme::Http, Protocol::Http1);
        plain_with_sni.sni = Some("a.test".into());
        let e = Transport::build(0, &plain_with_sni).err().unwrap();
        assert_eq!(e.path, "upstreams[0].sni");
    }

    #[test]
    fn targets_are_pooled_apart_when_they_connect_differently() {
        let plain = Transport::build(0, &cfg(Scheme::Http, Protocol::Http1)).unwrap();
        let h2c = Transport::build(0, &cfg(Scheme::Http, Protocol::H2c)).unwrap();
        let tls = Transport::build(0, &cfg(Scheme::Https, Protocol::Http1)).unwrap();
        let keys = [&plain, &h2c, &tls].map(|t| t.pool_key("127.0.0.1:1"));
        assert_ne!(keys[0], keys[1]);
        assert_ne!(keys[0], keys[2]);
        assert_eq!(keys[0], plain.pool_key("127.0.0.1:1"));
        assert!(h2c.multiplexed() && !plain.multiplexed());
    }

    #[test]
    fn tls_names_come_from_sni_or_the_target_host() {
        let tls = Transport::build(0, &cfg(Scheme::Https, Protocol::Http1)).unwrap();
        let name = tls.server_name_for("api.test:443").unwrap().unwrap();
        assert_eq!(name.to_str(), "api.test");
        assert!(tls.server_name_for("[::1]:443").unwrap().is_some());
        assert!(tls.server_name_for("not a name:443").is_err());
        let mut with_sni = cfg(Scheme::Https, Protocol::H2);
        with_sni.sni = Some("named.test".into());
        let tls = Transport::build(0, &with_sni).unwrap();
        let name = tls.server_name_for("10.0.0.1:443").unwrap().unwrap();
        assert_eq!(name.to_str(), "named.test");
    }
}
