//! basic-auth: the consumer is found by `Authorization: Basic base64(username:password)`,
//! checked against the consumers' `basic_auth` credentials. Passwords are compared in time
//! that does not depend on where they differ, and never logged.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http::header::{HeaderMap, AUTHORIZATION};
use serde::Deserialize;

use super::{Authenticate, Build, Consumer, Consumers, Plugin};
use crate::config::{default_true, ConfigError, ConsumerConfig};
use crate::errors::Reject;

/// `routes[].plugins.basic-auth` of the core config. (That a consumer has credentials is
/// checked in Python: pygate/plugins/native/basic_auth.py; without any, the route refuses
/// every call.)
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthConfig {
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
}

pub struct BasicAuth {
    hide_credentials: bool,
}

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    let config: BasicAuthConfig = cx.parse()?;
    Ok(Box::new(BasicAuth {
        hide_credentials: config.hide_credentials,
    }))
}

impl Plugin for BasicAuth {
    fn authenticator(&self) -> Option<&dyn Authenticate> {
        Some(self)
    }
}

impl Authenticate for BasicAuth {
    fn authenticate(
        &self,
        headers: &mut HeaderMap,
        consumers: &Consumers,
    ) -> Result<Consumer, Reject> {
        let consumer = consumers
            .basic
            .check(headers)
            .map_err(Reject::BasicUnauthorized)?;
        if self.hide_credentials {
            headers.remove(AUTHORIZATION);
        }
        Ok(Consumer::Known(consumer))
    }
}

/// One of `consumers[].basic_auth`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BasicCredential {
    pub username: String,
    pub password: String,
}

#[derive(Default)]
pub struct BasicCredentials {
    by_username: HashMap<String, (String, usize)>,
}

impl BasicCredentials {
    pub fn build(consumers: &[ConsumerConfig]) -> Result<BasicCredentials, ConfigError> {
        let mut by_username: HashMap<String, (String, usize)> = HashMap::new();
        for (ci, consumer) in consumers.iter().enumerate() {
            for (bi, cred) in consumer.basic_auth.iter().enumerate() {
                let field = format!("consumers[{ci}].basic_auth[{bi}]");
                if cred.username.is_empty() || cred.username.contains(':') {
                    return Err(ConfigError::new(
                        field + ".username",
                        "expected a non-empty username without ':'",
                    ));
                }
                if cred.password.is_empty() {
                    return Err(ConfigError::new(
                        field + ".password",
                        "expected a non-empty password",
                    ));
                }
                let entry = (cred.password.clone(), ci);
                if let Some((_, owner)) = by_username.insert(cred.username.clone(), entry) {
                    return Err(ConfigError::new(
                        field + ".username",
                        format!(
                            "username {:?} is already used by consumer {:?}",
                            cred.username, consumers[owner].name
                        ),
                    ));
                }
            }
        }
        Ok(BasicCredentials { by_username })
    }

    pub fn is_empty(&self) -> bool {
        self.by_username.is_empty()
    }

    /// The consumer index for the request's credentials, or why they were refused.
    pub fn check(&self, headers: &HeaderMap) -> Result<usize, &'static str> {
        let missing = "missing credentials: send Authorization: Basic base64(username:password)";
        let value = headers.get(AUTHORIZATION).ok_or(missing)?;
        let text = value
            .to_str()
            .map_err(|_| "malformed Authorization header")?;
        let (scheme, encoded) = text.trim().split_once(' ').ok_or(missing)?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return Err(missing);
        }
        let decoded = STANDARD
            .decode(encoded.trim())
            .map_err(|_| "malformed Basic credentials: expected base64(username:password)")?;
        let decoded = String::from_utf8(decoded).map_err(|_| "malformed Basic credentials")?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or("malformed Basic credentials: expected username:password")?;
        match self.by_username.get(username) {
            Some((expected, consumer)) if same_secret(expected.as_bytes(), password.as_bytes()) => {
                Ok(*consumer)
            }
            _ => Err("invalid username or password"),
        }
    }
}

/// Equal-length inputs are compared byte by byte without an early exit.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn creds() -> BasicCredentials {
        let consumers = vec![ConsumerConfig {
            name: "alice".into(),
            basic_auth: vec![BasicCredential {
                username: "al".into(),
                password: "s3cret:with:colons".into(),
            }],
            ..Default::default()
        }];
        BasicCredentials::build(&consumers).unwrap()
    }

    fn header(user_pass: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let v = format!("Basic {}", STANDARD.encode(user_pass));
        h.insert(AUTHORIZATION, HeaderValue::from_str(&v).unwrap());
        h
    }

    #[test]
    fn right_password_names_the_consumer() {
        assert_eq!(creds().check(&header("al:s3cret:with:colons")), Ok(0));
    }

    #[test]
    fn wrong_or_missing_credentials_are_refused() {
        let c = creds();
        assert!(c.check(&header("al:nope")).is_err());
        assert!(c.check(&header("bob:s3cret:with:colons")).is_err());
        assert!(c.check(&HeaderMap::new()).is_err());
        let mut garbage = HeaderMap::new();
        garbage.insert(AUTHORIZATION, HeaderValue::from_static("Basic !!!"));
        assert!(c.check(&garbage).unwrap_err().starts_with("malformed"));
    }

    #[test]
    fn duplicate_usernames_are_refused() {
        let cred = BasicCredential {
            username: "x".into(),
            password: "p".into(),
        };
        let consumers = vec![
            ConsumerConfig {
                name: "a".into(),
                basic_auth: vec![cred.clone()],
                ..Default::default()
            },
            ConsumerConfig {
                name: "b".into(),
                basic_auth: vec![cred],
                ..Default::default()
            },
        ];
        let e = BasicCredentials::build(&consumers).err().unwrap();
        assert_eq!(e.path, "consumers[1].basic_auth[0].username");
    }
}
