//! The TLS handshake of one accepted connection, bounded by the handshake timeout.
//!
//! A client that speaks plain HTTP to the TLS port gets a readable 400 (as nginx does)
//! instead of a TLS alert it cannot show: the first byte of a TLS connection is always a
//! handshake record (0x16), the first byte of an HTTP request a letter.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::StatusCode;
use rustls::ProtocolVersion;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use super::{certs, TlsInfo, TlsSettings};
use crate::conn_io::record_refusal;
use crate::errors::raw_response;
use crate::pipeline::ConnCtx;

pub enum Accepted {
    Tls(Box<TlsStream<TcpStream>>, TlsInfo),
    /// Refused, answered or timed out; nothing more to do.
    Closed,
}

const TLS_HANDSHAKE_RECORD: u8 = 0x16;

pub async fn accept(stream: TcpStream, settings: &TlsSettings, ctx: &ConnCtx) -> Accepted {
    let handshake = async {
        let mut first = [0u8; 1];
        match stream.peek(&mut first).await {
            Ok(1) if first[0] != TLS_HANDSHAKE_RECORD => {
                if first[0].is_ascii_alphabetic() {
                    plain_http(stream, ctx).await;
                }
                return None;
            }
            Ok(1) => {}
            _ => return None,
        }
        TlsAcceptor::from(settings.server.clone())
            .accept(stream)
            .await
            .ok()
    };
    match tokio::time::timeout(settings.handshake_timeout, handshake).await {
        Ok(Some(tls)) => {
            let info = info(&tls);
            Accepted::Tls(Box::new(tls), info)
        }
        _ => {
            let stats = ctx.shared.stats.worker(ctx.worker);
            stats.tls_handshake_failures.fetch_add(1, Ordering::Relaxed);
            Accepted::Closed
        }
    }
}

async fn plain_http(mut stream: TcpStream, ctx: &ConnCtx) {
    // Read what the client sent before answering, and until it closes after: closing a
    // socket with unread data resets it, and the client might never see the answer.
    let mut sink = vec![0u8; 16 * 1024];
    let _ = stream.read(&mut sink).await;
    let status = StatusCode::BAD_REQUEST;
    let kind = "plain_http_to_tls_port";
    let id = record_refusal(ctx, status, kind);
    let message = "this port speaks HTTPS: the plain HTTP request was refused; use https://";
    let raw = raw_response(status, kind, message, &id);
    let _ = stream.write_all(&raw).await;
    let _ = stream.shutdown().await;
    let mut left: usize = 64 * 1024;
    while left > 0 {
        match stream.read(&mut sink).await {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
}

fn info(tls: &TlsStream<TcpStream>) -> TlsInfo {
    let (_, conn) = tls.get_ref();
    let version = match conn.protocol_version() {
        Some(ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    };
    let alpn = match conn.alpn_protocol() {
        Some(b"h2") => "h2",
        Some(b"http/1.1") => "http/1.1",
        _ => "",
    };
    TlsInfo {
        version,
        sni: conn.server_name().map(Arc::from),
        alpn,
        client_subject: conn
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(certs::client_subject),
    }
}
