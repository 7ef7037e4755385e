//! What a load test should do, as Python hands it over (`pygate bench` builds it).

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BenchSpec {
    pub url: String,
    #[serde(default = "default_connections")]
    pub connections: usize,
    #[serde(default = "default_threads")]
    pub threads: usize,
    /// Measured phase length; ignored when `requests` is set.
    #[serde(default)]
    pub duration_ms: Option<u64>,
    /// Stop after this many measured requests.
    #[serde(default)]
    pub requests: Option<u64>,
    /// Requests per second across all connections: open-loop mode. None: closed loop.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    #[serde(default)]
    pub warmup_ms: u64,
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
}

fn default_connections() -> usize {
    50
}
fn default_threads() -> usize {
    1
}
fn default_method() -> String {
    "GET".into()
}
fn default_timeout() -> u64 {
    10_000
}

/// The target and the exact bytes of the request every connection sends.
#[derive(Debug)]
pub struct Prepared {
    pub addr: String,
    pub request: Vec<u8>,
    pub is_head: bool,
}

impl BenchSpec {
    pub fn prepare(&self, body: &[u8]) -> Result<Prepared, String> {
        let uri: http::Uri = self.url.parse().map_err(|e| {
            format!(
                "url: expected http://host:port/path, got {:?}: {e}",
                self.url
            )
        })?;
        if uri.scheme_str() != Some("http") {
            return Err(format!(
                "url: only http:// is supported, got {:?}",
                self.url
            ));
        }
        let authority = uri
            .authority()
            .ok_or_else(|| format!("url: missing host in {:?}", self.url))?;
        let port = authority.port_u16().unwrap_or(80);
        let addr = format!("{}:{}", authority.host(), port);
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        if self.connections == 0 || self.threads == 0 {
            return Err("connections and threads must be at least 1".into());
        }
        if self.rate.is_some_and(|r| r.is_nan() || r <= 0.0) {
            return Err("rate: expected requests per second > 0".into());
        }
        let method = self.method.to_ascii_uppercase();
        http::Method::from_bytes(method.as_bytes())
            .map_err(|_| format!("method: not an HTTP method: {:?}", self.method))?;
        let mut head = format!("{method} {path} HTTP/1.1\r\nhost: {authority}\r\n");
        let mut has_length = false;
        for (k, v) in &self.headers {
            let valid = http::HeaderName::from_bytes(k.as_bytes()).is_ok()
                && http::HeaderValue::from_str(v).is_ok();
            if !valid {
                return Err(format!("header: not a valid header: {k:?}: {v:?}"));
            }
            has_length |= k.eq_ignore_ascii_case("content-length");
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if !has_length && (!body.is_empty() || matches!(method.as_str(), "POST" | "PUT" | "PATCH"))
        {
            head.push_str(&format!("content-length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        let mut request = head.into_bytes();
        request.extend_from_slice(body);
        Ok(Prepared {
            addr,
            request,
            is_head: method == "HEAD",
        })
    }
}
