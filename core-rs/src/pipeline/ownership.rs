//! The request headers the gateway owns, and who the client is.
//!
//! Upstreams trust what the gateway tells them: `X-Consumer-Username` (who authenticated),
//! `X-Forwarded-*`, `X-Real-IP` and `Forwarded` (where the call came from), and the route's
//! `inject_headers` (a secret an internal upstream checks). So before any phase looks at the
//! request, `own_request_headers` removes the client's hop-by-hop headers, every header
//! the gateway will set, and (unless allowed) headers with `_` in their name, which CGI and
//! WSGI upstreams read as the same variable as the `-` spelling.
//!
//! From a peer in `trusted_proxies` the forwarding headers are kept (the gateway appends to
//! them) and the client address is taken from `X-Forwarded-For` as nginx's realip module
//! does with `real_ip_recursive on`: the right-most address that is not a trusted proxy.

use std::net::{IpAddr, SocketAddr};

use http::header::{HeaderMap, HeaderName, HeaderValue};
use ipnet::IpNet;

use super::forwarding::strip_hop_by_hop;
use crate::config::{ConfigError, HttpConfig};
use crate::path_normalise::PathRules;
use crate::plugins::ip_restriction::parse_list;
use crate::text::push_ip;

pub const CONSUMER_HEADER: &str = "x-consumer-username";
pub const X_FORWARDED_FOR: &str = "x-forwarded-for";
pub const X_FORWARDED_PROTO: &str = "x-forwarded-proto";
pub const X_FORWARDED_HOST: &str = "x-forwarded-host";
pub const X_REAL_IP: &str = "x-real-ip";
pub const FORWARDED: &str = "forwarded";

// The same names parsed once, for the map operations of every request (a `&str` name is
// parsed and validated on each lookup or insert).
pub static CONSUMER_NAME: HeaderName = HeaderName::from_static(CONSUMER_HEADER);
pub static X_FORWARDED_FOR_NAME: HeaderName = HeaderName::from_static(X_FORWARDED_FOR);
pub static X_FORWARDED_PROTO_NAME: HeaderName = HeaderName::from_static(X_FORWARDED_PROTO);
pub static X_FORWARDED_HOST_NAME: HeaderName = HeaderName::from_static(X_FORWARDED_HOST);
pub static X_REAL_IP_NAME: HeaderName = HeaderName::from_static(X_REAL_IP);
pub static FORWARDED_NAME: HeaderName = HeaderName::from_static(FORWARDED);

/// The `http` section of the config, compiled.
pub struct RequestRules {
    pub path: PathRules,
    pub underscores_in_headers: bool,
    trusted_proxies: Vec<IpNet>,
}

impl RequestRules {
    pub fn build(cfg: &HttpConfig) -> Result<RequestRules, ConfigError> {
        Ok(RequestRules {
            path: PathRules {
                merge_slashes: cfg.merge_slashes,
                escaped_slashes: cfg.escaped_slashes,
            },
            underscores_in_headers: cfg.underscores_in_headers,
            trusted_proxies: parse_list(&cfg.trusted_proxies, "http.trusted_proxies")?,
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }
}

/// Headers a client may never set, whoever the peer is. The forwarding headers are added
/// to this for untrusted peers (`is_forwarding_header`).
fn always_owned(name: &str) -> bool {
    name == CONSUMER_HEADER
}

/// `X-Forwarded-*` (For, Host, Proto, Port, Prefix, ...: frameworks read them all),
/// `X-Real-IP` and `Forwarded`.
fn is_forwarding_header(name: &str) -> bool {
    name.starts_with("x-forwarded-") || name == X_REAL_IP || name == FORWARDED
}

/// Names `Connection` may not remove (RFC 9110 7.6.1 lets a sender list only its own
/// hop-by-hop headers): the framing and Host, and everything the gateway sets.
pub fn protected_from_connection(name: &str) -> bool {
    matches!(name, "host" | "content-length" | "x-request-id")
        || always_owned(name)
        || is_forwarding_header(name)
}

/// Cleans the client's request headers before any phase reads them (see the module doc);
/// returns the client's address: the peer's, or the one its trusted proxies report.
pub fn own_request_headers(
    headers: &mut HeaderMap,
    peer: IpAddr,
    rules: &RequestRules,
    route_sets: &[(HeaderName, HeaderValue)],
) -> IpAddr {
    strip_hop_by_hop(headers);
    let peer = peer.to_canonical();
    let trusted = rules.trusts(peer);
    let client = if trusted {
        reported_client(headers, peer, rules)
    } else {
        peer
    };
    let refused = |name: &HeaderName| {
        let name = name.as_str();
        always_owned(name)
            || (!rules.underscores_in_headers && name.as_bytes().contains(&b'_'))
            || (!trusted && is_forwarding_header(name))
    };
    // Collected only when there is something to drop: a clean request allocates nothing.
    if headers.keys().any(refused) {
        let dropped: Vec<HeaderName> = headers.keys().filter(|n| refused(n)).cloned().collect();
        for name in dropped {
            headers.remove(name);
        }
    }
    for (name, _) in route_sets {
        headers.remove(name);
    }
    client
}

/// nginx realip with `real_ip_recursive on`: walk `X-Forwarded-For` from the right while
/// the hop so far is a trusted proxy; the first untrusted address is the client. Without
/// `X-Forwarded-For`, a trusted peer's `X-Real-IP` names the client.
fn reported_client(headers: &HeaderMap, peer: IpAddr, rules: &RequestRules) -> IpAddr {
    let mut client = peer;
    let mut saw_forwarded_for = false;
    'values: for value in headers.get_all(X_FORWARDED_FOR).iter().rev() {
        saw_forwarded_for = true;
        let Ok(text) = value.to_str() else { break };
        for entry in text.rsplit(',') {
            if !rules.trusts(client) {
                break 'values;
            }
            match parse_addr(entry.trim()) {
                Some(ip) => client = ip,
                None => break 'values,
            }
        }
    }
    if !saw_forwarded_for {
        if let Some(ip) = headers
            .get(X_REAL_IP)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_addr(v.trim()))
        {
            client = ip;
        }
    }
    client
}

/// `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`, and either with a `:port`.
fn parse_addr(text: &str) -> Option<IpAddr> {
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| text.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

/// This hop's `Forwarded` element (RFC 7239): `for=192.0.2.1;host="h:8080";proto=http`,
/// with an IPv6 peer quoted and bracketed.
pub fn forwarded_element(peer: IpAddr, host: Option<&HeaderValue>) -> String {
    let host = host.and_then(|h| h.to_str().ok());
    let mut element = String::with_capacity(48 + host.map_or(0, str::len));
    match peer {
        IpAddr::V4(_) => {
            element.push_str("for=");
            push_ip(&mut element, peer);
        }
        IpAddr::V6(_) => {
            element.push_str("for=\"[");
            push_ip(&mut element, peer);
            element.push_str("]\"");
        }
    }
    if let Some(host) = host.filter(|h| !h.contains(['"', '\\'])) {
        element.push_str(";host=\"");
        element.push_str(host);
        element.push('"');
    }
    element.push_str(";proto=http");
    element
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EscapedSlashes;

    fn rules(trusted: &[&str], underscores: bool) -> RequestRules {
        RequestRules::build(&HttpConfig {
            merge_slashes: true,
            escaped_slashes: EscapedSlashes::Reject,
            underscores_in_headers: underscores,
            trusted_proxies: trusted.iter().map(|s| s.to_string()).collect(),
        })
        .unwrap()
    }

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const SPOOFS: [(&str, &str); 7] = [
        ("x-consumer-username", "admin"),
        ("x-forwarded-for", "203.0.113.9"),
        ("x-forwarded-host", "evil.test"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-prefix", "/admin"),
        ("x-real-ip", "203.0.113.9"),
        ("forwarded", "for=203.0.113.9"),
    ];

    #[test]
    fn an_untrusted_client_cannot_set_what_the_gateway_owns() {
        let mut h = headers(&SPOOFS);
        h.append("x-consumer-username", "second".parse().unwrap());
        h.insert("x-kept", "1".parse().unwrap());
        let client = own_request_headers(&mut h, ip("10.0.0.5"), &rules(&[], false), &[]);
        assert_eq!(client, ip("10.0.0.5"));
        assert_eq!(h.len(), 1, "{h:?}");
        assert!(h.contains_key("x-kept"));
    }

    #[test]
    fn underscored_names_are_dropped_unless_allowed() {
        let pairs = [
            ("x_consumer_username", "bob"),
            ("x_user", "a"),
            ("x-user", "b"),
        ];
        let mut h = headers(&pairs);
        own_request_headers(&mut h, ip("10.0.0.5"), &rules(&[], false), &[]);
        assert_eq!(h.keys().map(|k| k.as_str()).collect::<Vec<_>>(), ["x-user"]);
        let mut h = headers(&[("x_user", "a")]);
        own_request_headers(&mut h, ip("10.0.0.5"), &rules(&[], true), &[]);
        assert!(h.contains_key("x_user"));
    }

    #[test]
    fn connection_cannot_remove_owned_or_framing_headers() {
        let mut h = headers(&[
            (
                "connection",
                "x-forwarded-for, content-length, host, x-request-id, x-hop",
            ),
            ("x-forwarded-for", "198.51.100.1"),
            ("content-length", "3"),
            ("host", "h"),
            ("x-request-id", "r1"),
            ("x-hop", "gone"),
        ]);
        let r = rules(&["10.0.0.0/8"], false);
        own_request_headers(&mut h, ip("10.0.0.5"), &r, &[]);
        for name in ["x-forwarded-for", "content-length", "host", "x-request-id"] {
            assert!(h.contains_key(name), "{name} was removed");
        }
        assert!(!h.contains_key("x-hop") && !h.contains_key("connection"));
    }

    #[test]
    fn route_injected_names_are_removed_from_the_client() {
        let set = [(
            HeaderName::from_static("x-internal-secret"),
            HeaderValue::from_static("s"),
        )];
        let mut h = headers(&[("X-Internal-Secret", "forged")]);
        own_request_headers(&mut h, ip("10.0.0.5"), &rules(&[], false), &set);
        assert!(h.is_empty());
    }

    #[test]
    fn a_trusted_proxy_keeps_its_headers_and_names_the_client() {
        let r = rules(&["10.0.0.0/8", "192.168.1.1"], false);
        let mut h = headers(&SPOOFS[1..]);
        h.insert(
            "x-forwarded-for",
            "203.0.113.7, 192.168.1.1".parse().unwrap(),
        );
        let client = own_request_headers(&mut h, ip("10.0.0.5"), &r, &[]);
        assert_eq!(client, ip("203.0.113.7"));
        assert_eq!(h.len(), SPOOFS.len() - 1);
    }

    #[test]
    fn the_client_is_the_right_most_untrusted_hop() {
        let r = rules(&["10.0.0.0/8"], false);
        let cases: [(&[&str], &str); 9] = [
            (&["203.0.113.7"], "203.0.113.7"),
            // A client can prepend whatever it likes; only the right-most hops count.
            (&["1.1.1.1, 203.0.113.7"], "203.0.113.7"),
            (&["1.1.1.1, 203.0.113.7, 10.0.0.9"], "203.0.113.7"),
            (&["1.1.1.1", "203.0.113.7"], "203.0.113.7"),
            (&["10.0.0.8, 10.0.0.9"], "10.0.0.8"),
            (&["[2001:db8::1]:443"], "2001:db8::1"),
            (&["203.0.113.7:1234"], "203.0.113.7"),
            (&["::ffff:203.0.113.7"], "203.0.113.7"),
            // Garbage stops the walk at the last good hop.
            (&["203.0.113.7, unknown, 10.0.0.9"], "10.0.0.9"),
        ];
        for (values, expected) in cases {
            let pairs: Vec<(&str, &str)> = values.iter().map(|v| ("x-forwarded-for", *v)).collect();
            let h = headers(&pairs);
            assert_eq!(
                reported_client(&h, ip("10.0.0.1"), &r),
                ip(expected),
                "{values:?}"
            );
        }
        let h = headers(&[("x-real-ip", "203.0.113.8")]);
        assert_eq!(reported_client(&h, ip("10.0.0.1"), &r), ip("203.0.113.8"));
    }

    #[test]
    fn bad_trusted_proxies_name_the_entry() {
        let cfg = HttpConfig {
            trusted_proxies: vec!["10.0.0.0/8".into(), "nope".into()],
            ..HttpConfig::default()
        };
        let e = RequestRules::build(&cfg).err().unwrap();
        assert_eq!(e.path, "http.trusted_proxies[1]");
    }

    #[test]
    fn forwarded_elements_quote_what_needs_it() {
        let host = HeaderValue::from_static("api.test:8080");
        assert_eq!(
            forwarded_element(ip("192.0.2.1"), Some(&host)),
            "for=192.0.2.1;host=\"api.test:8080\";proto=http"
        );
        assert_eq!(
            forwarded_element(ip("2001:db8::1"), None),
            "for=\"[2001:db8::1]\";proto=http"
        );
    }
}
