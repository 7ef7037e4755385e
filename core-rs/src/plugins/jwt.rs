//! jwt: verify `Authorization: Bearer <JSON Web Token>` signed with HS256 (a shared secret) or
//! RS256 (a public key from a JWKS; Python fetches JWKS files and URLs), check exp/nbf/iat
//! (jwt_time.rs), issuer and audience, and name the consumer from one claim (`sub` unless
//! configured).
//!
//! The token's `alg` only selects among keys of that kind: an RS256 key is never used as an
//! HMAC secret, and "none" is never accepted.

use std::sync::Arc;

use dashmap::DashMap;
use http::header::{HeaderMap, AUTHORIZATION};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use super::jwt_time::TimeWindow;
use super::{Authenticate, Build, Consumer, Consumers, Plugin};
use crate::clock::unix_ms;
use crate::config::{default_true, ConfigError};
use crate::errors::Reject;

/// `routes[].plugins.jwt` of the core config (Python has read `jwks_file` / `jwks_url` into `jwks`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JwtConfig {
    /// Shared secrets for HS256.
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Public keys (JWK objects, as in a JWKS document's "keys") for RS256.
    #[serde(default)]
    pub jwks: Vec<serde_json::Value>,
    /// The claim that names the consumer.
    #[serde(default = "default_consumer_claim")]
    pub consumer_claim: String,
    #[serde(default)]
    pub issuer: Option<String>,
    #[serde(default)]
    pub audience: Option<String>,
    #[serde(default)]
    pub leeway_s: u64,
    #[serde(default = "default_true")]
    pub require_exp: bool,
    #[serde(default = "default_true")]
    pub hide_credentials: bool,
}

fn default_consumer_claim() -> String {
    "sub".into()
}

struct Key {
    kid: Option<String>,
    algorithm: Algorithm,
    key: DecodingKey,
}

/// Verified tokens, so a client reusing its token (the usual case) costs one hash lookup
/// instead of an RSA verification per request. Bounded; emptied when full.
const CACHE_MAX: usize = 16_384;

struct Verified {
    consumer: Arc<str>,
    /// When the token may be used (exp, nbf and iat with the leeway), checked on every hit.
    window: TimeWindow,
}

pub struct Jwt {
    keys: Vec<Key>,
    cache: DashMap<String, Verified>,
    consumer_claim: String,
    issuer: Option<String>,
    audience: Option<String>,
    leeway_ms: i64,
    require_exp: bool,
    hide_credentials: bool,
}

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    Ok(Box::new(Jwt::build(&cx.parse()?, &cx.field)?))
}

impl Plugin for Jwt {
    fn authenticator(&self) -> Option<&dyn Authenticate> {
        Some(self)
    }
}

impl Authenticate for Jwt {
    fn authenticate(&self, headers: &mut HeaderMap, _: &Consumers) -> Result<Consumer, Reject> {
        let consumer = self.verify(headers).map_err(Reject::Unauthorized)?;
        if self.hide_credentials {
            headers.remove(AUTHORIZATION);
        }
        Ok(Consumer::Named(consumer))
    }
}

impl Jwt {
    pub fn build(c: &JwtConfig, field: &str) -> Result<Jwt, ConfigError> {
        let mut keys = Vec::new();
        for (i, secret) in c.secrets.iter().enumerate() {
            if secret.len() < 32 {
                // RFC 7518 §3.2: an HS256 key must be at least as long as the hash (256 bits).
                return Err(ConfigError::new(
                    format!("{field}.secrets[{i}]"),
                    "expected an HS256 secret of at least 32 bytes",
                ));
            }
            keys.push(Key {
                kid: None,
                algorithm: Algorithm::HS256,
                key: DecodingKey::from_secret(secret.as_bytes()),
            });
        }
        for (i, value) in c.jwks.iter().enumerate() {
            let at = format!("{field}.jwks[{i}]");
            let jwk: Jwk = serde_json::from_value(value.clone())
                .map_err(|e| ConfigError::new(&at, format!("expected a JWK: {e}")))?;
            let key = DecodingKey::from_jwk(&jwk)
                .map_err(|e| ConfigError::new(&at, format!("unusable JWK: {e}")))?;
            let algorithm = match &jwk.algorithm {
                jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Algorithm::RS256,
                jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => Algorithm::HS256,
                _ => {
                    return Err(ConfigError::new(
                        &at,
                        "expected an RSA (RS256) or oct (HS256) key",
                    ))
                }
            };
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                algorithm,
                key,
            });
        }
        if keys.is_empty() {
            return Err(ConfigError::new(
                field,
                "expected at least one key: secrets, jwks, jwks_file or jwks_url",
            ));
        }
        Ok(Jwt {
            keys,
            cache: DashMap::new(),
            consumer_claim: c.consumer_claim.clone(),
            issuer: c.issuer.clone(),
            audience: c.audience.clone(),
            leeway_ms: i64::try_from(c.leeway_s.saturating_mul(1000)).unwrap_or(i64::MAX),
            require_exp: c.require_exp,
            hide_credentials: c.hide_credentials,
        })
    }

    /// The consumer named by a valid token, or why the token was refused.
    pub fn verify(&self, headers: &HeaderMap) -> Result<Arc<str>, &'static str> {
        let token = bearer(headers).ok_or("missing token: send Authorization: Bearer <jwt>")?;
        let now_ms = i64::try_from(unix_ms()).unwrap_or(i64::MAX);
        if let Some(hit) = self.cache.get(token) {
            if hit.window.check(now_ms).is_ok() {
                return Ok(hit.consumer.clone());
            }
        }
        let (consumer, claims) = self.verify_signed(token)?;
        let window = TimeWindow::of(&claims, self.leeway_ms, self.require_exp)?;
        window.check(now_ms)?;
        let consumer: Arc<str> = Arc::from(consumer);
        let verified = Verified {
            consumer: consumer.clone(),
            window,
        };
        if self.cache.len() >= CACHE_MAX {
            self.cache.clear();
        }
        self.cache.insert(token.to_owned(), verified);
        Ok(consumer)
    }

    fn verify_signed(&self, token: &str) -> Result<(String, Map<String, Value>), &'static str> {
        let header = decode_header(token).map_err(|_| "invalid token: malformed")?;
        let alg = header.alg;
        let candidates = self.keys.iter().filter(|k| {
            k.algorithm == alg
                && match (&k.kid, &header.kid) {
                    (Some(a), Some(b)) => a == b,
                    _ => true,
                }
        });
        let validation = self.validation(alg);
        let mut refusal = "invalid token: no key matches its alg and kid";
        for key in candidates {
            match decode::<Map<String, Value>>(token, &key.key, &validation) {
                Ok(data) => return Ok((self.consumer(&data.claims)?, data.claims)),
                Err(e) => refusal = reason(e.kind()),
            }
        }
        Err(refusal)
    }

    fn validation(&self, alg: Algorithm) -> Validation {
        let mut v = Validation::new(alg);
        // Time claims are ours (jwt_time.rs): jsonwebtoken skips an exp or nbf it cannot
        // read as u64 (a string, a negative number) and rounds fractions to whole seconds.
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims.clear();
        match &self.issuer {
            Some(iss) => v.set_issuer(&[iss]),
            None => v.iss = None,
        }
        match &self.audience {
            Some(aud) => v.set_audience(&[aud]),
            None => v.validate_aud = false,
        }
        v
    }

    fn consumer(&self, claims: &Map<String, Value>) -> Result<String, &'static str> {
        match claims.get(&self.consumer_claim) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err("invalid token: it has no consumer claim"),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let auth = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = auth.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

fn reason(kind: &jsonwebtoken::errors::ErrorKind) -> &'static str {
    use jsonwebtoken::errors::ErrorKind as K;
    match kind {
        K::InvalidIssuer => "invalid token: wrong issuer",
        K::InvalidAudience => "invalid token: wrong audience",
        K::InvalidSignature => "invalid token: bad signature",
        _ => "invalid token: malformed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;
    use jsonwebtoken::{encode, EncodingKey, Header};

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn config() -> JwtConfig {
        serde_json::from_value(serde_json::json!({"secrets": [SECRET], "issuer": "me"})).unwrap()
    }

    fn token(claims: Value, secret: &str) -> HeaderMap {
        let t = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap();
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        h
    }

    fn now() -> u64 {
        crate::clock::unix_ms() / 1000
    }

    #[test]
    fn valid_hs256_token_names_the_consumer() {
        let jwt = Jwt::build(&config(), "jwt").unwrap();
        let claims = serde_json::json!({"sub": "alice", "iss": "me", "exp": now() + 60});
        assert_eq!(&*jwt.verify(&token(claims, SECRET)).unwrap(), "alice");
    }

    #[test]
    fn bad_tokens_say_why() {
        let jwt = Jwt::build(&config(), "jwt").unwrap();
        let ok = |extra: Value| {
            let mut c = serde_json::json!({"sub": "a", "iss": "me", "exp": now() + 60});
            c.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            c
        };
        let expired = token(ok(serde_json::json!({"exp": now() - 600})), SECRET);
        assert_eq!(jwt.verify(&expired).unwrap_err(), "invalid token: expired");
        let forged = token(ok(serde_json::json!({})), &SECRET.replace('0', "1"));
        assert_eq!(
            jwt.verify(&forged).unwrap_err(),
            "invalid token: bad signature"
        );
        let wrong_iss = token(ok(serde_json::json!({"iss": "other"})), SECRET);
        assert_eq!(
            jwt.verify(&wrong_iss).unwrap_err(),
            "invalid token: wrong issuer"
        );
        assert!(jwt
            .verify(&HeaderMap::new())
            .unwrap_err()
            .starts_with("missing"));
    }

    #[test]
    fn cached_tokens_still_expire() {
        let jwt = Jwt::build(&config(), "jwt").unwrap();
        // A fractional exp (RFC 7519 NumericDate) expires at its fraction, cached or not.
        let soon = serde_json::json!({"sub": "a", "iss": "me", "exp": now() as f64 + 1.5});
        let h = token(soon, SECRET);
        assert_eq!(&*jwt.verify(&h).unwrap(), "a");
        assert_eq!(jwt.cache.len(), 1);
        assert_eq!(&*jwt.verify(&h).unwrap(), "a", "served from the cache");
        std::thread::sleep(std::time::Duration::from_millis(2100));
        assert_eq!(jwt.verify(&h).unwrap_err(), "invalid token: expired");
    }

    #[test]
    fn short_secrets_and_empty_key_sets_are_config_errors() {
        let short: JwtConfig =
            serde_json::from_value(serde_json::json!({"secrets": ["x"]})).unwrap();
        assert_eq!(
            Jwt::build(&short, "jwt").err().unwrap().path,
            "jwt.secrets[0]"
        );
        let none: JwtConfig = serde_json::from_value(serde_json::json!({})).unwrap();
        assert!(Jwt::build(&none, "jwt").is_err());
    }
}
