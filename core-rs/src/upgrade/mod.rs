//! WebSocket proxying over HTTP/1.1 (RFC 6455) on routes with `websocket` set.
//!
//! The handshake is an ordinary request through every phase (limits, route, ip rules, CORS,
//! auth, rate limit, Python access plugins); only `Connection: upgrade` + `Upgrade:
//! websocket`, which phase 3 strips as hop-by-hop, are put back for the upstream. It goes
//! over a fresh upstream connection (an upgraded one is never pooled). When the upstream
//! answers 101, the client gets 101 and a task relays the two upgraded streams
//! (relay.rs), writing the call's one record when the socket closes: duration, bytes each
//! way, close code.
//!
//! Anything else asking to upgrade (another protocol, a route without `websocket`) loses
//! its Upgrade headers and reaches the upstream as a plain request; an upstream that
//! answers such a request with 101 anyway gets a 502, so neither side ever gets a raw
//! stream the other did not agree to.
//!
//! The relay task owns a copy of the route's settings and its upstream target, so a reload
//! does not touch open sockets. Shutdown does not wait for them: hyper's graceful drain ends
//! with the HTTP exchange, and the sockets are cut when the worker stops (after the grace,
//! or at once if nothing else is in flight); their records say `gateway_shutdown`.
//!
//! HTTP/2 clients open WebSockets by extended CONNECT (RFC 8441, extended_connect.rs): the
//! same pipeline and relay, an upstream handshake with the gateway's own key, 200 on the
//! client's stream instead of 101. Such a socket is one stream of a connection that goes on
//! serving others, so it holds the connection's in-flight count (conn_idle.rs) for its life:
//! the keep-alive clock must not close a connection whose only traffic is WebSocket frames.

pub mod extended_connect;
mod frames;
mod relay;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response, StatusCode, Version};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use std::sync::{Arc, Mutex};

use crate::body::{RequestBody, ResponseBody};
use crate::config::WebSocketConfig;
use crate::conn_idle::InFlight;
use crate::proxy::{self, Connections, Failure, Forwarded};
use crate::records::CallLog;
use crate::upstream::Upstream;
use extended_connect::UpstreamKey;

/// A WebSocket opening handshake (RFC 6455 §4.1): GET over HTTP/1.1 with `Upgrade:
/// websocket`, `upgrade` among the `Connection` tokens, a key and a version.
pub fn is_websocket_handshake(method: &Method, version: Version, h: &HeaderMap) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        h.get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    };
    method == Method::GET
        && version == Version::HTTP_11
        && has_token(header::UPGRADE, "websocket")
        && has_token(header::CONNECTION, "upgrade")
        && h.contains_key(header::SEC_WEBSOCKET_KEY)
        && h.contains_key(header::SEC_WEBSOCKET_VERSION)
}

fn set_upgrade_headers(h: &mut HeaderMap) {
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
}

/// Send the handshake on a fresh connection, by the same rules as any request (proxy.rs):
/// connect failures move on to the next target; a handshake that was written is not resent.
/// `key`: the gateway's own, for an HTTP/2 client's handshake (which has none).
pub async fn forward(
    upstream: &Upstream,
    preserve_host: bool,
    mut req: Request<RequestBody>,
    worker: usize,
    tried_addr: &mut Option<std::sync::Arc<str>>,
    key: Option<&UpstreamKey>,
) -> Result<Forwarded, Failure> {
    set_upgrade_headers(req.headers_mut());
    if let Some(k) = key {
        req.headers_mut()
            .insert(header::SEC_WEBSOCKET_KEY, k.key.clone());
    }
    let fresh = Connections::Fresh;
    proxy::forward(upstream, preserve_host, req, worker, fresh, tried_addr).await
}

/// Put on the response to an HTTP/2 client's handshake: the connection's service leaves an
/// in-flight mark in it (conn.rs), which the socket's task holds until the socket closes.
#[derive(Clone)]
pub struct HoldConnection(Arc<Mutex<Option<InFlight>>>);

impl HoldConnection {
    pub fn hold(&self, mark: InFlight) {
        if let Ok(mut slot) = self.0.lock() {
            *slot = Some(mark);
        }
    }
}

/// The upstream agreed (101): answer the client with the upstream's handshake headers (101
/// on HTTP/1.1; 200 on an HTTP/2 stream, without Sec-WebSocket-Accept, RFC 8441 §5) and
/// relay the upgraded streams in a task of their own, which finishes `call` at close.
pub fn splice(
    mut forwarded: Forwarded,
    client: OnUpgrade,
    mut call: CallLog,
    cfg: WebSocketConfig,
    h2: bool,
    mut head_headers: impl FnMut(&mut HeaderMap),
) -> Response<ResponseBody> {
    let upstream = hyper::upgrade::on(&mut forwarded.response);
    let (mut head, _) = forwarded.response.into_parts();
    head_headers(&mut head.headers);
    let hold = match h2 {
        true => {
            head.version = Version::HTTP_2;
            head.status = StatusCode::OK;
            head.headers.remove(header::SEC_WEBSOCKET_ACCEPT);
            let slot = HoldConnection(Arc::new(Mutex::new(None)));
            head.extensions.insert(slot.clone());
            Some(slot)
        }
        false => {
            head.version = Version::HTTP_11;
            set_upgrade_headers(&mut head.headers);
            None
        }
    };
    call.record.status = head.status.as_u16();
    call.record.upstream_addr = Some(forwarded.conn.target.addr.clone());
    call.record.upstream_latency_us = forwarded.upstream_latency.as_micros() as u64;
    let conn = forwarded.conn;
    tokio::spawn(async move {
        let mut open = OpenSocket(Some(call));
        // Filled by the service before hyper answers the stream; dropped with this task.
        let _held = hold;
        let (client, upstream) = match tokio::join!(client, upstream) {
            (Ok(c), Ok(u)) => (c, u),
            (client, _) => {
                open.end(if client.is_err() {
                    "client_closed"
                } else {
                    "upstream_closed"
                });
                return;
            }
        };
        let out = relay::run(TokioIo::new(client), TokioIo::new(upstream), cfg).await;
        // The upstream connection counted as active (least_conn) for the socket's life.
        drop(conn);
        let Some(mut call) = open.0.take() else {
            return;
        };
        call.record.bytes_in += out.bytes_in;
        call.record.bytes_out += out.bytes_out;
        call.record.ws_close_code = out.close_code;
        call.record.ws_frames_in = out.frames_in;
        call.record.ws_frames_out = out.frames_out;
        if call.record.error_kind.is_empty() {
            call.record.error_kind = out.error_kind;
        }
        call.finish();
    });
    Response::from_parts(head, ResponseBody::switching())
}

/// The call of a socket being relayed. A worker that stops drops its tasks mid-relay: the
/// record is still written then, with what is known (no byte counts, no Close sent).
struct OpenSocket(Option<CallLog>);

impl OpenSocket {
    fn end(&mut self, kind: &'static str) {
        if let Some(mut call) = self.0.take() {
            call.record.error_kind = kind;
            call.record.ws_close_code = 1006;
            call.finish();
        }
    }
}

impl Drop for OpenSocket {
    fn drop(&mut self) {
        self.end("gateway_shutdown");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn handshake(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                header::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        h
    }

    #[test]
    fn only_a_complete_websocket_handshake_counts() {
        let full = [
            ("connection", "keep-alive, Upgrade"),
            ("upgrade", "WebSocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ("sec-websocket-version", "13"),
        ];
        let v11 = Version::HTTP_11;
        assert!(is_websocket_handshake(&Method::GET, v11, &handshake(&full)));
        assert!(!is_websocket_handshake(
            &Method::POST,
            v11,
            &handshake(&full)
        ));
        assert!(!is_websocket_handshake(
            &Method::GET,
            Version::HTTP_10,
            &handshake(&full)
        ));
        let h2c = [("connection", "upgrade"), ("upgrade", "h2c")];
        assert!(!is_websocket_handshake(&Method::GET, v11, &handshake(&h2c)));
        assert!(!is_websocket_handshake(
            &Method::GET,
            v11,
            &handshake(&full[1..])
        ));
    }
}
