//! Certificates: loading and checking the PEM files, and choosing one per handshake by SNI.
//!
//! Errors name the file and the field, never quote its content: a key file's bytes must not
//! reach a log, a CLI error or the admin API (rustls-pki-types' PEM errors may carry a line
//! of the file, so they are never passed on).

use std::collections::HashMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

use super::TlsConfig;
use crate::config::ConfigError;

/// The listener's certificates by SNI name: exact names, then `*.suffix` wildcards (one
/// label, as RFC 6125 says), then the default (the first certificate; none if strict).
#[derive(Debug, Default)]
pub struct CertStore {
    exact: HashMap<String, Arc<CertifiedKey>>,
    wildcard: HashMap<String, Arc<CertifiedKey>>,
    default: Option<Arc<CertifiedKey>>,
}

impl CertStore {
    pub fn load(
        config: &TlsConfig,
        field: &str,
        provider: &CryptoProvider,
    ) -> Result<CertStore, ConfigError> {
        if config.certificates.is_empty() {
            return Err(ConfigError::new(
                format!("{field}.certificates"),
                "expected at least one certificate",
            ));
        }
        let mut store = CertStore::default();
        for (i, c) in config.certificates.iter().enumerate() {
            let field = format!("{field}.certificates[{i}]");
            let chain = load_chain(&c.cert, &format!("{field}.cert"))?;
            let names = if c.names.is_empty() {
                dns_names(&chain[0])
            } else {
                c.names.iter().map(|n| n.to_ascii_lowercase()).collect()
            };
            let key = load_key(&c.key, &format!("{field}.key"))?;
            let certified = CertifiedKey::from_der(chain, key, provider).map_err(|e| {
                let message = match e {
                    rustls::Error::InconsistentKeys(_) => format!(
                        "the private key in {} does not match the certificate in {}",
                        c.key, c.cert
                    ),
                    other => format!("cannot use the private key in {}: {other}", c.key),
                };
                ConfigError::new(format!("{field}.key"), message)
            })?;
            let certified = Arc::new(certified);
            for (ni, name) in names.into_iter().enumerate() {
                // The first certificate naming a host serves it (nginx's order, too).
                match name.strip_prefix("*.") {
                    Some(suffix) if valid_dns(suffix) => store.wildcard.entry(suffix.to_owned()),
                    None if valid_dns(&name) => store.exact.entry(name),
                    _ => {
                        return Err(ConfigError::new(
                            format!("{field}.names[{ni}]"),
                            format!(
                                "expected a DNS name or *.name, got {name:?} (from {})",
                                c.cert
                            ),
                        ))
                    }
                }
                .or_insert_with(|| certified.clone());
            }
            if i == 0 && !config.strict_sni {
                store.default = Some(certified);
            }
        }
        Ok(store)
    }

    fn lookup(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        let name = name.to_ascii_lowercase();
        if let Some(found) = self.exact.get(&name) {
            return Some(found.clone());
        }
        let (_, parent) = name.split_once('.')?;
        self.wildcard.get(parent).cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        hello
            .server_name()
            .and_then(|name| self.lookup(name))
            .or_else(|| self.default.clone())
    }
}

fn valid_dns(name: &str) -> bool {
    !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn read(path: &str, what: &str, field: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path)
        .map_err(|e| ConfigError::new(field, format!("cannot read the {what} file {path}: {e}")))
}

/// A PEM certificate chain, leaf first, each certificate within its validity dates.
fn load_chain(path: &str, field: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let chain = pem_certificates(path, field)?;
    let now = x509_parser::time::ASN1Time::now();
    for der in &chain {
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| {
            ConfigError::new(
                field,
                format!("{path} holds a certificate that cannot be parsed"),
            )
        })?;
        let validity = cert.validity();
        if validity.not_after < now {
            return Err(ConfigError::new(
                field,
                format!(
                    "the certificate in {path} ({}) expired on {}",
                    cert.subject(),
                    validity.not_after
                ),
            ));
        }
        if validity.not_before > now {
            return Err(ConfigError::new(
                field,
                format!(
                    "the certificate in {path} ({}) is not valid before {}",
                    cert.subject(),
                    validity.not_before
                ),
            ));
        }
    }
    Ok(chain)
}

fn pem_certificates(path: &str, field: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = read(path, "certificate", field)?;
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, pem::Error>>()
        .map_err(|_| ConfigError::new(field, format!("{path} is not a valid PEM file")))?;
    if chain.is_empty() {
        return Err(ConfigError::new(
            field,
            format!("no certificate in {path} (expected a PEM \"BEGIN CERTIFICATE\" block)"),
        ));
    }
    Ok(chain)
}

fn load_key(path: &str, field: &str) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let bytes = read(path, "private key", field)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| {
        let message = match e {
            pem::Error::NoItemsFound => format!(
                "no private key in {path} (expected a PEM \"BEGIN PRIVATE KEY\", \
                 \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\" block)"
            ),
            _ => format!("{path} is not a valid PEM private key file"),
        };
        ConfigError::new(field, message)
    })
}

/// The CA certificates that client certificates must chain to (mTLS).
pub fn load_roots(path: &str, field: &str) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::empty();
    for der in pem_certificates(path, field)? {
        roots.add(der).map_err(|e| {
            ConfigError::new(
                field,
                format!("{path} holds an unusable CA certificate: {e}"),
            )
        })?;
    }
    Ok(roots)
}

/// The DNS names a certificate is for: its subjectAltName DNS entries, else its CN.
fn dns_names(der: &CertificateDer<'_>) -> Vec<String> {
    let Ok((_, cert)) = X509Certificate::from_der(der) else {
        return Vec::new();
    };
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(d) => Some(d.to_ascii_lowercase()),
                _ => None,
            })
            .filter(|d| valid_dns(d.strip_prefix("*.").unwrap_or(d)))
            .collect(),
        _ => Vec::new(),
    };
    if names.is_empty() {
        names.extend(
            cert.subject()
                .iter_common_name()
                .filter_map(|cn| cn.as_str().ok())
                .filter(|cn| valid_dns(cn.strip_prefix("*.").unwrap_or(cn)))
                .map(|cn| cn.to_ascii_lowercase()),
        );
    }
    names
}

/// The verified client certificate's subject: its common name, else the whole subject.
pub fn client_subject(der: &CertificateDer<'_>) -> Option<Arc<str>> {
    let (_, cert) = X509Certificate::from_der(der).ok()?;
    let subject = cert.subject();
    let cn = subject.iter_common_name().find_map(|cn| cn.as_str().ok());
    Some(match cn {
        Some(cn) => Arc::from(cn),
        None => Arc::from(subject.to_string()),
    })
}
