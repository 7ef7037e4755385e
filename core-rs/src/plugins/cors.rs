//! cors: answer browsers' preflight requests at the gateway and add the CORS headers to every
//! response of the route (errors included, so a page can read why it was refused).

use std::collections::HashSet;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, StatusCode};
use serde::Deserialize;

use super::{Build, Guarded, Plugin, Verdict};
use crate::config::ConfigError;

/// `routes[].plugins.cors` of the core config.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct CorsConfig {
    /// Exact origins ("https://app.example.com") or "*".
    pub allow_origins: Vec<String>,
    #[serde(default)]
    pub allow_methods: Vec<String>,
    #[serde(default)]
    pub allow_headers: Vec<String>,
    #[serde(default)]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default)]
    pub max_age_s: Option<u64>,
}

pub struct Cors {
    any_origin: bool,
    origins: HashSet<String>,
    credentials: bool,
    allow_methods: HeaderValue,
    allow_headers: Option<HeaderValue>,
    expose_headers: Option<HeaderValue>,
    max_age: Option<HeaderValue>,
}

const DEFAULT_METHODS: &str = "GET, HEAD, PUT, PATCH, POST, DELETE, OPTIONS";

fn joined(values: &[String], field: &str) -> Result<Option<HeaderValue>, ConfigError> {
    if values.is_empty() {
        return Ok(None);
    }
    HeaderValue::from_str(&values.join(", "))
        .map(Some)
        .map_err(|_| ConfigError::new(field, "expected header-safe names"))
}

pub fn build(cx: &Build<'_>) -> Result<Box<dyn Plugin>, ConfigError> {
    Ok(Box::new(Cors::build(&cx.parse()?, &cx.field)?))
}

/// A preflight is answered in the guard phase: it never reaches authentication or the
/// upstream. Every answer of the route (refusals too) gets the CORS headers, so a page can
/// read why it was refused.
impl Plugin for Cors {
    fn guard(&self, request: &Guarded<'_>) -> Verdict {
        if !Cors::is_preflight(request.method, request.headers) {
            return Verdict::Pass;
        }
        let mut headers = HeaderMap::new();
        self.preflight_headers(request.headers, &mut headers);
        Verdict::Answer(StatusCode::NO_CONTENT, headers)
    }

    fn note(&self, request: &HeaderMap) -> Option<HeaderValue> {
        request.get(header::ORIGIN).cloned()
    }

    fn respond(&self, origin: &HeaderValue, response: &mut HeaderMap) {
        self.decorate(origin, response);
    }
}

impl Cors {
    pub fn build(cfg: &CorsConfig, field: &str) -> Result<Cors, ConfigError> {
        if cfg.allow_origins.is_empty() {
            return Err(ConfigError::new(
                format!("{field}.allow_origins"),
                "expected at least one origin (or \"*\")",
            ));
        }
        for (i, origin) in cfg.allow_origins.iter().enumerate() {
            let ok = origin == "*"
                || ((origin.starts_with("http://") || origin.starts_with("https://"))
                    && !origin.ends_with('/')
                    && HeaderValue::from_str(origin).is_ok());
            if !ok {
                return Err(ConfigError::new(
                    format!("{field}.allow_origins[{i}]"),
                    format!(
                        "expected \"*\" or scheme://host[:port] without a path, got {origin:?}"
                    ),
                ));
            }
        }
        let methods = if cfg.allow_methods.is_empty() {
            HeaderValue::from_static(DEFAULT_METHODS)
        } else {
            for (i, m) in cfg.allow_methods.iter().enumerate() {
                if Method::from_bytes(m.as_bytes()).is_err() {
                    return Err(ConfigError::new(
                        format!("{field}.allow_methods[{i}]"),
                        format!("expected an HTTP method, got {m:?}"),
                    ));
                }
            }
            let upper: Vec<String> = cfg.allow_methods.iter().map(|m| m.to_uppercase()).collect();
            joined(&upper, &format!("{field}.allow_methods"))?.expect("not empty")
        };
        Ok(Cors {
            any_origin: cfg.allow_origins.iter().any(|o| o == "*"),
            origins: cfg.allow_origins.iter().cloned().collect(),
            credentials: cfg.allow_credentials,
            allow_methods: methods,
            allow_headers: joined(&cfg.allow_headers, &format!("{field}.allow_headers"))?,
            expose_headers: joined(&cfg.expose_headers, &format!("{field}.expose_headers"))?,
            max_age: cfg.max_age_s.map(HeaderValue::from),
        })
    }

    /// The Access-Control-Allow-Origin value for this request's Origin, if it is allowed.
    /// With credentials a browser refuses "*", so the origin itself is echoed instead.
    pub fn allowed_origin(&self, origin: &HeaderValue) -> Option<HeaderValue> {
        if self.any_origin && !self.credentials {
            return Some(HeaderValue::from_static("*"));
        }
        let listed = origin.to_str().is_ok_and(|o| self.origins.contains(o));
        (self.any_origin || listed).then(|| origin.clone())
    }

    pub fn is_preflight(method: &Method, headers: &HeaderMap) -> bool {
        method == Method::OPTIONS
            && headers.contains_key(header::ORIGIN)
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD)
    }

    /// Headers of the gateway's own answer to a preflight (besides those of `decorate`).
    pub fn preflight_headers(&self, request: &HeaderMap, out: &mut HeaderMap) {
        out.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        let asked = request.get(header::ACCESS_CONTROL_REQUEST_HEADERS);
        // Without a configured list, whatever the page asks for is allowed.
        if let Some(h) = self.allow_headers.as_ref().or(asked) {
            out.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h.clone());
        }
        if let Some(age) = &self.max_age {
            out.insert(header::ACCESS_CONTROL_MAX_AGE, age.clone());
        }
    }

    /// Add the CORS headers for `origin` to a response of this route.
    pub fn decorate(&self, origin: &HeaderValue, out: &mut HeaderMap) {
        // Caches must not serve one origin's answer to another.
        out.append(header::VARY, HeaderValue::from_static("Origin"));
        let Some(allowed) = self.allowed_origin(origin) else {
            return;
        };
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allowed);
        if self.credentials {
            out.insert(
                header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
                HeaderValue::from_static("true"),
            );
        }
        if let Some(h) = &self.expose_headers {
            out.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, h.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cors(origins: &[&str], credentials: bool) -> Cors {
        Cors::build(
            &CorsConfig {
                allow_origins: origins.iter().map(|s| s.to_string()).collect(),
                allow_methods: vec![],
                allow_headers: vec![],
                expose_headers: vec!["X-Request-Id".into()],
                allow_credentials: credentials,
                max_age_s: Some(600),
            },
            "routes[0].cors",
        )
        .unwrap()
    }

    fn hv(s: &'static str) -> HeaderValue {
        HeaderValue::from_static(s)
    }

    #[test]
    fn listed_origins_are_echoed_and_others_get_nothing() {
        let c = cors(&["https://app.example.com"], false);
        let mut h = HeaderMap::new();
        c.decorate(&hv("https://app.example.com"), &mut h);
        assert_eq!(
            h[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        assert_eq!(h[header::ACCESS_CONTROL_EXPOSE_HEADERS], "X-Request-Id");
        assert_eq!(h[header::VARY], "Origin");
        let mut other = HeaderMap::new();
        c.decorate(&hv("https://evil.example"), &mut other);
        assert!(!other.contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
    }

    #[test]
    fn wildcard_becomes_the_origin_with_credentials() {
        assert_eq!(
            cors(&["*"], false).allowed_origin(&hv("https://a.b")),
            Some(hv("*"))
        );
        let c = cors(&["*"], true);
        assert_eq!(
            c.allowed_origin(&hv("https://a.b")),
            Some(hv("https://a.b"))
        );
    }

    #[test]
    fn preflight_answer_lists_methods_headers_and_max_age() {
        let c = cors(&["https://app.example.com"], false);
        let mut req = HeaderMap::new();
        req.insert(header::ORIGIN, hv("https://app.example.com"));
        req.insert(header::ACCESS_CONTROL_REQUEST_METHOD, hv("PUT"));
        req.insert(
            header::ACCESS_CONTROL_REQUEST_HEADERS,
            hv("content-type, apikey"),
        );
        assert!(Cors::is_preflight(&Method::OPTIONS, &req));
        assert!(!Cors::is_preflight(&Method::GET, &req));
        let mut out = HeaderMap::new();
        c.preflight_headers(&req, &mut out);
        assert_eq!(out[header::ACCESS_CONTROL_ALLOW_METHODS], DEFAULT_METHODS);
        assert_eq!(
            out[header::ACCESS_CONTROL_ALLOW_HEADERS],
            "content-type, apikey"
        );
        assert_eq!(out[header::ACCESS_CONTROL_MAX_AGE], "600");
    }

    #[test]
    fn bad_origins_are_config_errors() {
        let e = Cors::build(
            &CorsConfig {
                allow_origins: vec!["https://ok.example".into(), "https://x.example/".into()],
                allow_methods: vec![],
                allow_headers: vec![],
                expose_headers: vec![],
                allow_credentials: false,
                max_age_s: None,
            },
            "routes[2].cors",
        )
        .err()
        .unwrap();
        assert_eq!(e.path, "routes[2].cors.allow_origins[1]");
    }
}
