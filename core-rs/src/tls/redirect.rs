//! `https_redirect` on a route: a call that came over plain HTTP is sent to https://.

use http::HeaderValue;

/// `https://host[:port]/path?query` for a request to `host` (its port, if any, dropped).
/// None if the result is no valid header value (the host was checked on admission).
pub fn https_location(host: &str, port: u16, path_and_query: &str) -> Option<HeaderValue> {
    let name = match host.strip_prefix('[') {
        Some(v6) => &host[..v6.find(']')? + 2],
        None => host.split(':').next().unwrap_or(host),
    };
    let location = if port == 443 {
        format!("https://{name}{path_and_query}")
    } else {
        format!("https://{name}:{port}{path_and_query}")
    };
    HeaderValue::from_str(&location).ok()
}

#[cfg(test)]
mod tests {
    use super::https_location;

    #[test]
    fn keeps_the_path_and_sets_the_port() {
        let at = |h, p, q| {
            https_location(h, p, q)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            at("example.com:80", 443, "/a?b=1"),
            "https://example.com/a?b=1"
        );
        assert_eq!(at("example.com", 8443, "/"), "https://example.com:8443/");
        assert_eq!(at("[::1]:8080", 8443, "/x"), "https://[::1]:8443/x");
    }
}
