//! WebSockets over HTTP/2 (RFC 8441): the client's extended CONNECT (`:method CONNECT`,
//! `:protocol websocket`, `:path`, `sec-websocket-version: 13`) is the handshake. It goes
//! through the pipeline as the HTTP/1.1 handshake it stands for (a GET on the same path, so
//! routes, methods and plugins see what they see for HTTP/1.1), and the upstream gets an
//! HTTP/1.1 Upgrade with a key of the gateway's own. The upstream's 101 must carry the
//! matching Sec-WebSocket-Accept (the gateway, not the client, checks it: RFC 8441 has no
//! key); the client then gets 200 on its stream, and the stream's DATA carries the same
//! frame bytes as an upgraded HTTP/1.1 connection, so relay.rs relays both alike.
//!
//! Every other CONNECT is refused before routing: plain CONNECT (a TCP tunnel, which a
//! gateway in front of services must not open to arbitrary hosts), and extended CONNECT for
//! any protocol but `websocket`. The h2 codec already resets malformed ones (`:protocol` on
//! another method, extended CONNECT without `:scheme` or `:path`) with PROTOCOL_ERROR.

use base64::Engine;
use http::header::{self, HeaderMap, HeaderValue};
use http::request::Parts;
use http::{Method, Version};
use hyper::ext::Protocol;

use crate::errors::Reject;

/// What a CONNECT request is to the gateway.
#[derive(Debug, PartialEq, Eq)]
pub enum Connect {
    /// Not a CONNECT at all.
    None,
    /// An RFC 8441 WebSocket handshake, now turned into its HTTP/1.1 form.
    WebSocket,
}

/// Settles a CONNECT before routing: an HTTP/2 WebSocket handshake becomes the GET it
/// stands for (the method the call record keeps is the client's CONNECT); anything else
/// asking for CONNECT is refused with a message saying what is offered.
pub fn admit_connect(parts: &mut Parts) -> Result<Connect, Reject> {
    if parts.method != Method::CONNECT {
        return Ok(Connect::None);
    }
    let protocol = parts.extensions.get::<Protocol>().map(|p| p.as_str());
    let Some(protocol) = protocol.filter(|_| parts.version == Version::HTTP_2) else {
        return Err(Reject::BadRequest(
            "CONNECT tunnels are not offered; only HTTP/2 extended CONNECT with \
             :protocol websocket (RFC 8441)",
        ));
    };
    if !protocol.eq_ignore_ascii_case("websocket") {
        return Err(Reject::BadRequest(
            "extended CONNECT is only offered for :protocol websocket",
        ));
    }
    let version = parts.headers.get(header::SEC_WEBSOCKET_VERSION);
    if version.is_none_or(|v| v.as_bytes() != b"13") {
        return Err(Reject::BadRequest(
            "an HTTP/2 WebSocket handshake needs sec-websocket-version: 13",
        ));
    }
    parts.method = Method::GET;
    parts.extensions.remove::<Protocol>();
    // RFC 8441 has no key; one a client sent anyway is not the upstream's to see.
    parts.headers.remove(header::SEC_WEBSOCKET_KEY);
    Ok(Connect::WebSocket)
}

/// The gateway's own Sec-WebSocket-Key for the upstream handshake, and the
/// Sec-WebSocket-Accept the upstream must answer with (RFC 6455 §4.2.2).
pub struct UpstreamKey {
    pub key: HeaderValue,
    accept: String,
}

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

impl UpstreamKey {
    pub fn generate() -> UpstreamKey {
        // fastrand is enough: the key only makes the upstream prove it read this handshake;
        // the gateway is the client, so no browser cache can be poisoned by guessing it.
        let nonce: [u8; 16] = std::array::from_fn(|_| fastrand::u8(..));
        let key = base64::engine::general_purpose::STANDARD.encode(nonce);
        let accept = accept_for(&key);
        UpstreamKey {
            key: HeaderValue::from_str(&key).expect("base64 is a valid header value"),
            accept,
        }
    }

    /// The upstream's 101 proves it read this handshake (and is a WebSocket server).
    pub fn accepted_by(&self, h: &HeaderMap) -> bool {
        h.get(header::SEC_WEBSOCKET_ACCEPT)
            .is_some_and(|v| v.as_bytes() == self.accept.as_bytes())
    }
}

fn accept_for(key: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA1_FOR_LEGACY_USE_ONLY,
        format!("{key}{GUID}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;

    fn connect(protocol: Option<&'static str>, version: Version, ws_version: &str) -> Parts {
        let mut req = Request::builder()
            .method(Method::CONNECT)
            .version(version)
            .uri("https://example.com/chat")
            .header("sec-websocket-version", ws_version)
            .header("sec-websocket-key", "c2VudCBieSB0aGUgY2xpZW50")
            .body(())
            .unwrap();
        if let Some(p) = protocol {
            req.extensions_mut().insert(Protocol::from_static(p));
        }
        req.into_parts().0
    }

    #[test]
    fn the_rfc_6455_example_key_gives_its_accept() {
        assert_eq!(
            accept_for("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn a_fresh_key_is_accepted_only_by_its_own_answer() {
        let k = UpstreamKey::generate();
        let mut h = HeaderMap::new();
        assert!(!k.accepted_by(&h));
        h.insert(
            header::SEC_WEBSOCKET_ACCEPT,
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".parse().unwrap(),
        );
        assert!(!k.accepted_by(&h));
        let right = accept_for(k.key.to_str().unwrap());
        h.insert(header::SEC_WEBSOCKET_ACCEPT, right.parse().unwrap());
        assert!(k.accepted_by(&h));
    }

    #[test]
    fn an_h2_websocket_connect_becomes_its_get() {
        let mut parts = connect(Some("websocket"), Version::HTTP_2, "13");
        assert_eq!(admit_connect(&mut parts).unwrap(), Connect::WebSocket);
        assert_eq!(parts.method, Method::GET);
        assert!(parts.extensions.get::<Protocol>().is_none());
        assert!(!parts.headers.contains_key(header::SEC_WEBSOCKET_KEY));
    }

    #[test]
    fn every_other_connect_is_refused() {
        for (protocol, version, ws) in [
            (None, Version::HTTP_2, "13"),
            (None, Version::HTTP_11, "13"),
            (Some("websocket"), Version::HTTP_11, "13"),
            (Some("connect-udp"), Version::HTTP_2, "13"),
            (Some("websocket"), Version::HTTP_2, "8"),
        ] {
            let mut parts = connect(protocol, version, ws);
            let refused = admit_connect(&mut parts).unwrap_err();
            assert_eq!(refused.status(), http::StatusCode::BAD_REQUEST);
            assert_eq!(parts.method, Method::CONNECT);
        }
        let mut get = connect(None, Version::HTTP_2, "13");
        get.method = Method::GET;
        assert_eq!(admit_connect(&mut get).unwrap(), Connect::None);
    }
}
