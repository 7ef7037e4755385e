//! What a request must be before it is routed (phase 1, `accept`): within the operator's
//! size limits, with one valid Host (RFC 9112 3.2) and a normalised path.

use std::borrow::Cow;

use http::header::{self, HeaderValue};
use http::request::Parts;
use http::uri::{PathAndQuery, Uri};
use http::Version;

use crate::config::Limits;
use crate::errors::Reject;
use crate::path_normalise::{normalise, PathRules};

/// hyper enforces its own (larger) buffer limit; these are the operator's limits, answered with
/// our JSON errors. Returns the size of the request head, which counts toward `bytes_in`.
pub fn check_limits(parts: &Parts, limits: &Limits) -> Result<u64, Reject> {
    let uri_len = parts.uri.path_and_query().map_or(1, |pq| pq.as_str().len())
        + parts.uri.authority().map_or(0, |a| a.as_str().len());
    if uri_len > limits.max_uri_bytes {
        return Err(Reject::UriTooLong);
    }
    // "METHOD URI HTTP/1.1\r\n" + "name: value\r\n"... + "\r\n"
    let mut head = parts.method.as_str().len() + 1 + uri_len + 11 + 2;
    for (name, value) in &parts.headers {
        head += name.as_str().len() + 2 + value.len() + 2;
    }
    if head > limits.max_header_bytes {
        return Err(Reject::HeaderTooLarge);
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body_bytes) {
        return Err(Reject::BodyTooLarge);
    }
    Ok(head as u64)
}

/// Settles the request target, as nginx does: exactly one valid Host on HTTP/1.1 (HTTP/1.0
/// may omit it and is routed by the host-less routes); for an absolute-form target
/// (`GET http://host/path`) the URI's authority wins and becomes the Host header. Then the
/// path is normalised (path_normalise.rs), so routing, the upstream and the call record all
/// see the same path. The query string is left as it is.
pub fn admit_target(parts: &mut Parts, rules: PathRules) -> Result<(), Reject> {
    let mut hosts = parts.headers.get_all(header::HOST).iter();
    let host = hosts.next();
    if hosts.next().is_some() {
        return Err(Reject::BadRequest(
            "the request has more than one Host header",
        ));
    }
    if host.is_some_and(|h| !valid_host(h.as_bytes())) {
        return Err(Reject::BadRequest(
            "the Host header is not a valid host[:port]",
        ));
    }
    // HTTP/2 carries the host in :authority (hyper puts it in the URI) instead.
    let h2_authority = parts.version == Version::HTTP_2 && parts.uri.authority().is_some();
    let host_required = parts.version >= Version::HTTP_11 && !h2_authority;
    if host.is_none() && host_required {
        return Err(Reject::BadRequest(
            "an HTTP/1.1 request needs a Host header",
        ));
    }
    if let Some(authority) = parts.uri.authority() {
        let scheme_ok = matches!(parts.uri.scheme_str(), Some("http" | "https"));
        if !scheme_ok || !valid_host(authority.as_str().as_bytes()) {
            return Err(Reject::BadRequest(
                "the absolute request target needs an http URI with a valid host[:port]",
            ));
        }
        let value = HeaderValue::from_str(authority.as_str())
            .map_err(|_| Reject::BadRequest("the request target's host is not valid"))?;
        parts.headers.insert(header::HOST, value);
    }
    let normal = normalise(parts.uri.path(), rules).map_err(|e| Reject::BadRequest(e.message()))?;
    if let Cow::Owned(path) = normal {
        parts.uri = with_path(&parts.uri, &path)?;
    }
    Ok(())
}

fn with_path(uri: &Uri, path: &str) -> Result<Uri, Reject> {
    let invalid = |_| Reject::BadRequest("the normalised path is not a valid URI path");
    let path_and_query = match uri.query() {
        Some(query) => PathAndQuery::try_from(format!("{path}?{query}")),
        None => PathAndQuery::try_from(path),
    }
    .map_err(invalid)?;
    let mut uri_parts = uri.clone().into_parts();
    uri_parts.path_and_query = Some(path_and_query);
    Uri::from_parts(uri_parts).map_err(|_| Reject::BadRequest("the request target is not valid"))
}

/// `host[:port]` as RFC 9110 4.2.1 / RFC 3986 3.2.2 allow it for http: a DNS-style name (letters,
/// digits, `-`, `_`, dots between non-empty labels) or an IPv4 or bracketed IPv6 address,
/// then an optional port of 1 to 5 digits up to 65535. No userinfo (`a:@b`, `user@host`),
/// no spaces, no empty host or port.
pub fn valid_host(host: &[u8]) -> bool {
    let (name, port) = if host.first() == Some(&b'[') {
        let Some(end) = host.iter().position(|&b| b == b']') else {
            return false;
        };
        let literal = std::str::from_utf8(&host[1..end]).unwrap_or("");
        if literal.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match &host[end + 1..] {
            [] => (None, None),
            [b':', port @ ..] => (None, Some(port)),
            _ => return false,
        }
    } else {
        match host.iter().rposition(|&b| b == b':') {
            Some(i) => (Some(&host[..i]), Some(&host[i + 1..])),
            None => (Some(host), None),
        }
    };
    if let Some(name) = name {
        let label_ok = |label: &[u8]| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        // One trailing dot (a fully qualified name) is allowed; the router ignores it.
        let name = name.strip_suffix(b".").unwrap_or(name);
        if name.is_empty() || name.len() > 253 || !name.split(|&b| b == b'.').all(label_ok) {
            return false;
        }
    }
    match port {
        None => true,
        Some(digits) => {
            !digits.is_empty()
                && digits.len() <= 5
                && digits.iter().all(u8::is_ascii_digit)
                && std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse::<u16>().ok())
                    .is_some()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = Request::builder().method("POST").uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn limits() -> Limits {
        Limits {
            max_header_bytes: 200,
            max_uri_bytes: 50,
            max_body_bytes: 1000,
            header_timeout_ms: 1000,
            ..Limits::default()
        }
    }

    #[test]
    fn within_limits_reports_head_size() {
        let n = check_limits(&parts("/a?b=c", &[("host", "x")]), &limits()).unwrap();
        // "POST /a?b=c HTTP/1.1\r\n" (22) + "host: x\r\n" (9) + "\r\n" (2)
        assert_eq!(n, 33);
    }

    #[test]
    fn long_uri_is_414() {
        let uri = format!("/{}", "a".repeat(60));
        let r = check_limits(&parts(&uri, &[]), &limits()).err().unwrap();
        assert_eq!(r.status(), 414);
    }

    #[test]
    fn big_headers_are_431() {
        let big = "v".repeat(250);
        let r = check_limits(&parts("/", &[("x-big", &big)]), &limits())
            .err()
            .unwrap();
        assert_eq!(r.status(), 431);
    }

    #[test]
    fn declared_body_over_limit_is_413() {
        let r = check_limits(&parts("/", &[("content-length", "1001")]), &limits())
            .err()
            .unwrap();
        assert_eq!(r.status(), 413);
        assert!(check_limits(&parts("/", &[("content-length", "1000")]), &limits()).is_ok());
    }
}

#[cfg(test)]
mod target_tests {
    use super::*;
    use crate::config::EscapedSlashes;
    use http::Request;

    const RULES: PathRules = PathRules {
        merge_slashes: true,
        escaped_slashes: EscapedSlashes::Reject,
    };

    fn request(version: Version, uri: &str, hosts: &[&str]) -> Parts {
        let mut b = Request::builder().version(version).uri(uri);
        for h in hosts {
            b = b.header("host", *h);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn admit(version: Version, uri: &str, hosts: &[&str]) -> Result<Parts, Reject> {
        let mut parts = request(version, uri, hosts);
        admit_target(&mut parts, RULES).map(|_| parts)
    }

    #[test]
    fn valid_hosts() {
        for host in [
            "example.com",
            "EXAMPLE.com:8080",
            "a",
            "a.b.c.",
            "127.0.0.1",
            "127.0.0.1:65535",
            "[::1]",
            "[::1]:80",
            "[2001:db8::1]",
            "under_score.test",
            "xn--bcher-kva.example",
        ] {
            assert!(valid_host(host.as_bytes()), "{host}");
        }
    }

    #[test]
    fn invalid_hosts() {
        for host in [
            "",
            ":80",
            "a:@b",
            "user@example.com",
            "user:pw@example.com:80",
            "example.com:",
            "example.com:99999",
            "example.com:8a",
            "example.com:-1",
            "a b",
            " example.com",
            "example.com/x",
            "exa\\mple",
            "a..b",
            ".a",
            "a.b..",
            "[::1",
            "[::1]x",
            "[not-v6]",
            "[::1]:",
            "a:b:c",
            "ex%61mple.com",
            "a\tb",
        ] {
            assert!(!valid_host(host.as_bytes()), "{host:?}");
        }
        assert!(!valid_host(format!("{}.com", "a".repeat(64)).as_bytes()));
    }

    #[test]
    fn host_is_required_once_on_http_11() {
        assert!(admit(Version::HTTP_11, "/x", &["a.test"]).is_ok());
        for hosts in [&[][..], &["a.test", "a.test"], &["a.test", "b.test"], &[""]] {
            let err = admit(Version::HTTP_11, "/x", hosts).err().unwrap();
            assert_eq!(err.status(), 400, "{hosts:?}");
        }
        // HTTP/1.0 may leave Host out (but not send a bad one).
        assert!(admit(Version::HTTP_10, "/x", &[]).is_ok());
        assert!(admit(Version::HTTP_10, "/x", &["a:@b"]).is_err());
    }

    #[test]
    fn absolute_form_authority_becomes_the_host() {
        let parts = admit(
            Version::HTTP_11,
            "http://api.test:81/a/../b?q=1",
            &["other.test"],
        )
        .unwrap();
        assert_eq!(parts.headers["host"], "api.test:81");
        assert_eq!(parts.uri.path(), "/b");
        assert_eq!(parts.uri.query(), Some("q=1"));
        for uri in [
            "http://user@api.test/x",
            "http://a:@b/x",
            "ftp://api.test/x",
        ] {
            assert!(
                admit(Version::HTTP_11, uri, &["api.test"]).is_err(),
                "{uri}"
            );
        }
        // HTTP/1.1 needs Host even then (RFC 9112 3.2, as nginx).
        assert!(admit(Version::HTTP_11, "http://api.test/x", &[]).is_err());
        assert!(admit(Version::HTTP_10, "http://api.test/x", &[]).is_ok());
    }

    #[test]
    fn path_is_normalised_and_the_query_kept() {
        let parts = admit(Version::HTTP_11, "/a/%2e%2e/b//c?x=/../%2e", &["h"]).unwrap();
        assert_eq!(parts.uri.path(), "/b/c");
        assert_eq!(parts.uri.query(), Some("x=/../%2e"));
        let err = admit(Version::HTTP_11, "/a/..%2fb", &["h"]).err().unwrap();
        assert_eq!(err.status(), 400);
    }
}
