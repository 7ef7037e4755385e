//! key-auth: the consumer is found by an API key from the `apikey` header, the `x-api-key`
//! header (what Anthropic's SDK sends) or `Authorization: Bearer <key>` (what OpenAI's SDK
//! sends). Keys are compared as whole strings and never logged.

use std::collections::HashMap;

use http::header::{HeaderMap, HeaderName, AUTHORIZATION};
use serde::Deserialize;

use super::{Authenticate, Build, Consumer, Consumers, Plugin};
use crate::config::{default_true, ConfigError, ConsumerConfig};
use crate::errors::Reject;

/// `routes[].plugins.key-auth` of the core config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct KeyAuthConfig {
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
}

pub struct KeyAuth {
    hide_credentials: bool,
}

/// (That some consumer has a key is checked in Python: pygate/plugins/native/key_auth.py,
/// and pygate/config/ai_checks.py for the AI routes; without one, every call is refused.)
pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    let config: KeyAuthConfig = cx.parse()?;
    Ok(Box::new(KeyAuth {
        hide_credentials: config.hide_credentials,
    }))
}

impl Plugin for KeyAuth {
    fn authenticator(&self) -> Option<&dyn Authenticate> {
        Some(self)
    }
}

impl Authenticate for KeyAuth {
    fn authenticate(
        &self,
        headers: &mut HeaderMap,
        consumers: &Consumers,
    ) -> Result<Consumer, Reject> {
        let key = extract_key(headers).ok_or(Reject::Unauthorized(
            "missing API key: send it in the apikey or x-api-key header, or as Authorization: Bearer <key>",
        ))?;
        let consumer = consumers
            .keys
            .lookup(key)
            .ok_or(Reject::Unauthorized("invalid API key"))?;
        if self.hide_credentials {
            hide_keys(headers);
        }
        Ok(Consumer::Known(consumer))
    }
}

pub const APIKEY_HEADER: &str = "apikey";
pub const X_API_KEY_HEADER: &str = "x-api-key";
// Parsed once: a `&str` name is parsed and validated on every lookup (each request).
static APIKEY_NAME: HeaderName = HeaderName::from_static(APIKEY_HEADER);
static X_API_KEY_NAME: HeaderName = HeaderName::from_static(X_API_KEY_HEADER);

/// Every consumer key of a config, mapped to the consumer's index.
#[derive(Default)]
pub struct KeyTable {
    by_key: HashMap<String, usize>,
}

impl KeyTable {
    pub fn build(consumers: &[ConsumerConfig]) -> Result<KeyTable, ConfigError> {
        let mut by_key = HashMap::new();
        let mut names = HashMap::new();
        for (ci, consumer) in consumers.iter().enumerate() {
            if let Some(prev) = names.insert(consumer.name.as_str(), ci) {
                return Err(ConfigError::new(
                    format!("consumers[{ci}].name"),
                    format!(
                        "duplicate consumer name {:?} (also consumers[{prev}])",
                        consumer.name
                    ),
                ));
            }
            for (ki, key) in consumer.keys.iter().enumerate() {
                if key.is_empty() {
                    return Err(ConfigError::new(
                        format!("consumers[{ci}].keys[{ki}]"),
                        "expected a non-empty key",
                    ));
                }
                if let Some(owner) = by_key.insert(key.clone(), ci) {
                    // Name the other owner but never the key itself.
                    return Err(ConfigError::new(
                        format!("consumers[{ci}].keys[{ki}]"),
                        format!(
                            "key is already used by consumer {:?}",
                            consumers[owner].name
                        ),
                    ));
                }
            }
        }
        Ok(KeyTable { by_key })
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    pub fn lookup(&self, key: &str) -> Option<usize> {
        self.by_key.get(key).copied()
    }
}

/// The key the client sent, looked for in this order: `apikey`, `x-api-key`, Bearer.
pub fn extract_key(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers.get(&APIKEY_NAME).and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    if let Some(v) = headers.get(&X_API_KEY_NAME).and_then(|v| v.to_str().ok()) {
        return Some(v.trim());
    }
    headers.get_all(AUTHORIZATION).iter().find_map(bearer_token)
}

fn bearer_token(value: &http::HeaderValue) -> Option<&str> {
    let (scheme, token) = value.to_str().ok()?.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

/// `hide_credentials`: remove every place a key can be in, not only the one the key was
/// read from, so a second key (the same or another consumer's) never reaches the upstream.
/// Authorization is removed only when it carries a Bearer token: other schemes are not
/// key-auth credentials.
pub fn hide_keys(headers: &mut HeaderMap) {
    headers.remove(&APIKEY_NAME);
    headers.remove(&X_API_KEY_NAME);
    if headers
        .get_all(AUTHORIZATION)
        .iter()
        .any(|v| bearer_token(v).is_some())
    {
        headers.remove(AUTHORIZATION);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn consumers() -> Vec<ConsumerConfig> {
        vec![
            ConsumerConfig {
                name: "alice".into(),
                keys: vec!["k1".into(), "k2".into()],
                ..Default::default()
            },
            ConsumerConfig {
                name: "bob".into(),
                keys: vec!["k3".into()],
                ..Default::default()
            },
        ]
    }

    #[test]
    fn finds_consumer_by_any_of_its_keys() {
        let t = KeyTable::build(&consumers()).unwrap();
        assert_eq!(t.lookup("k2"), Some(0));
        assert_eq!(t.lookup("k3"), Some(1));
        assert_eq!(t.lookup("nope"), None);
    }

    #[test]
    fn duplicate_keys_are_refused_without_echoing_the_key() {
        let mut c = consumers();
        c[1].keys.push("k1".into());
        let e = KeyTable::build(&c).err().unwrap();
        assert_eq!(e.path, "consumers[1].keys[1]");
        assert!(!e.message.contains("k1"));
    }

    #[test]
    fn key_from_apikey_header_or_bearer() {
        let mut h = HeaderMap::new();
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(extract_key(&h), Some("abc"));
        h.insert("apikey", HeaderValue::from_static("xyz"));
        assert_eq!(extract_key(&h), Some("xyz"));
        h.remove("apikey");
        h.insert("x-api-key", HeaderValue::from_static("anthropic-style"));
        assert_eq!(extract_key(&h), Some("anthropic-style"));
        let mut basic = HeaderMap::new();
        basic.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
        assert_eq!(extract_key(&basic), None);
        basic.append(AUTHORIZATION, HeaderValue::from_static("bearer  k2 "));
        assert_eq!(extract_key(&basic), Some("k2"));
    }

    #[test]
    fn hiding_removes_every_key_header() {
        let mut h = HeaderMap::new();
        h.insert("apikey", HeaderValue::from_static("k1"));
        h.append("apikey", HeaderValue::from_static("k1-again"));
        h.insert("x-api-key", HeaderValue::from_static("k2"));
        h.insert(AUTHORIZATION, HeaderValue::from_static("Bearer k3"));
        h.insert("x-kept", HeaderValue::from_static("1"));
        hide_keys(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        let mut basic = HeaderMap::new();
        basic.insert(AUTHORIZATION, HeaderValue::from_static("Basic Zm9v"));
        hide_keys(&mut basic);
        assert!(
            basic.contains_key(AUTHORIZATION),
            "not a key-auth credential"
        );
    }
}
