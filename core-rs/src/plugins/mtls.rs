//! mtls: the caller is the verified client certificate of its TLS connection. The listener
//! (tls.client_auth) verifies the chain during the handshake; this plugin only names the
//! consumer after the certificate's subject (its common name, else the whole subject,
//! tls/certs.rs) and refuses calls that came without one (plain HTTP, or a listener where
//! client certificates are optional).

use http::header::HeaderMap;
use serde::Deserialize;

use super::{Authenticate, Build, Consumer, Consumers, Plugin};
use crate::config::ConfigError;
use crate::errors::Reject;
use crate::tls::TlsInfo;

#[derive(Debug, Clone, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct MtlsConfig {}

pub struct Mtls;

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    let _: MtlsConfig = cx.parse()?;
    Ok(Box::new(Mtls))
}

impl Plugin for Mtls {
    fn authenticator(&self) -> Option<&dyn Authenticate> {
        Some(self)
    }
}

const NO_CERTIFICATE: Reject =
    Reject::Unauthorized("a verified client certificate is required: connect over TLS with one");

impl Authenticate for Mtls {
    fn authenticate(&self, _: &mut HeaderMap, _: &Consumers) -> Result<Consumer, Reject> {
        Err(NO_CERTIFICATE)
    }

    fn authenticate_on(
        &self,
        _: &mut HeaderMap,
        _: &Consumers,
        tls: Option<&TlsInfo>,
    ) -> Result<Consumer, Reject> {
        tls.and_then(|t| t.client_subject.clone())
            .map(Consumer::Named)
            .ok_or(NO_CERTIFICATE)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn the_subject_is_the_consumer_and_none_is_refused() {
        let consumers = Consumers::default();
        let mut headers = HeaderMap::new();
        let mut on = |tls: Option<&TlsInfo>| Mtls.authenticate_on(&mut headers, &consumers, tls);
        let with = TlsInfo {
            client_subject: Some(Arc::from("alice")),
            ..TlsInfo::default()
        };
        assert!(matches!(on(Some(&with)), Ok(Consumer::Named(n)) if &*n == "alice"));
        assert!(on(Some(&TlsInfo::default())).is_err());
        assert!(on(None).is_err());
    }
}
