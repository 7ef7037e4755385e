//! The operator's size limits, checked before any routing (phase 1, `accept`).

use http::header;
use http::request::Parts;

use crate::config::Limits;
use crate::errors::Reject;

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
