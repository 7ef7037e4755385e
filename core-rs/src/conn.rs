//! One client connection: which HTTP it speaks, and hyper serving it into the pipeline.
//!
//! HTTP/1.1 is the default. HTTP/2 comes either from TLS (ALPN chose "h2", tls/) or, on cleartext with `http2.h2c` on, by prior knowledge: the client's first 24
//! bytes are the h2 preface. Only then are the first bytes read here (and replayed to hyper
//! by conn_io.rs); with h2c off an HTTP/1 connection goes to hyper untouched.
//!
//! Both protocols run the same service (pipeline::handle), so routing, plugins, limits and
//! call records are the same; a record's `protocol` says which one carried the call.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::Version;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;

use crate::body::{ConnFlags, ResponseBody};
use crate::conn_idle::{drive, Activity, Lifeline, Timeouts};
use crate::conn_io::{ClientStream, IoParts, ShapedIo};
use crate::pipeline::{self, ConnCtx};
use crate::state::Shared;
use crate::tls::TlsInfo;
use crate::upgrade::HoldConnection;

const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The `protocol` column of a call record.
pub fn protocol_name(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_11 => "HTTP/1.1",
        Version::HTTP_2 => "HTTP/2",
        Version::HTTP_3 => "HTTP/3",
        _ => "",
    }
}

/// Serves `stream` on the current worker's runtime until it closes, a timeout closes it or
/// the worker stops (`life`). `tls`: what the TLS handshake settled (None: plain TCP).
pub fn serve_connection<S: ClientStream>(
    stream: S,
    peer: SocketAddr,
    worker: usize,
    shared: &Arc<Shared>,
    life: &Lifeline,
    tls: Option<TlsInfo>,
) {
    let limits = shared.state.load().limits.clone();
    // TLS: ALPN decided. Plain TCP: HTTP/1, or HTTP/2 by prior knowledge with h2c on.
    let alpn_h2 = tls.as_ref().map(|t| t.alpn == "h2");
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        peer,
        worker,
        tls,
    });
    let activity = Activity::new();
    let header = Duration::from_millis(limits.header_timeout_ms.max(1));
    let keepalive = Duration::from_millis(limits.keepalive_timeout_ms.max(1));
    let flags = Arc::new(ConnFlags::default());
    let parts = IoParts {
        ctx: ctx.clone(),
        flags: flags.clone(),
        activity: activity.clone(),
        send_timeout: Duration::from_millis(limits.send_timeout_ms.max(1)),
    };
    let life = life.clone();
    let stats = shared.stats.worker(worker);
    stats.connections_active.fetch_add(1, Ordering::Relaxed);
    let shared = shared.clone();
    tokio::spawn(async move {
        let mut stream = stream;
        let chosen = match alpn_h2 {
            Some(h2) => Some((h2, Bytes::new())),
            None if limits.http2.h2c => {
                sniff(&mut stream, &activity, Instant::now() + header).await
            }
            None => Some((false, Bytes::new())),
        };
        let t = Timeouts {
            header,
            keepalive,
            http1: true,
        };
        match chosen {
            None => {}
            Some((false, replay)) => {
                let io = TokioIo::new(ShapedIo::new(stream, parts, true, replay));
                let service = service(ctx, flags, activity.clone());
                let mut builder = http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .keep_alive(true)
                    // Off: conn_idle.rs runs the header and keep-alive clocks.
                    .header_read_timeout(None)
                    // hyper's own ceiling sits above the operator's limits so that the
                    // pipeline sees oversized heads and answers them; beyond it hyper
                    // refuses (and conn_io reshapes).
                    .max_buf_size(
                        (limits.max_header_bytes + limits.max_uri_bytes + 8192).max(16 * 1024),
                    );
                // with_upgrades: a WebSocket's 101 hands the stream to upgrade/.
                let conn = builder.serve_connection(io, service).with_upgrades();
                drive(conn, |c| c.graceful_shutdown(), activity, t, life).await;
            }
            Some((true, replay)) => {
                let io = TokioIo::new(ShapedIo::new(stream, parts, false, replay));
                let service = service(ctx, flags, activity.clone());
                let conn = limits.http2.builder().serve_connection(io, service);
                let t = Timeouts { http1: false, ..t };
                drive(conn, |c| c.graceful_shutdown(), activity, t, life).await;
            }
        }
        let stats = shared.stats.worker(worker);
        stats.connections_active.fetch_sub(1, Ordering::Relaxed);
    });
}

fn service(
    ctx: Arc<ConnCtx>,
    flags: Arc<ConnFlags>,
    activity: Arc<Activity>,
) -> impl hyper::service::Service<
    http::Request<hyper::body::Incoming>,
    Response = http::Response<ResponseBody>,
    Error = Infallible,
    Future = impl std::future::Future<Output = Result<http::Response<ResponseBody>, Infallible>>
                 + Send
                 + 'static,
> + Clone {
    service_fn(move |req| {
        let in_flight = activity.enter();
        let ctx = ctx.clone();
        let flags = flags.clone();
        async move {
            // Boxed: the pipeline's future is several KiB, and an unboxed one is copied
            // whole wherever hyper moves the service future (into an HTTP/2 stream's task,
            // into the HTTP/1 dispatcher's slot), once or more per request (memcpy was
            // ~7% of an h2 profile; 11.6 KiB when measured); the box is allocated once and
            // stays put.
            let mut response = Box::pin(pipeline::handle(req, &ctx)).await;
            if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
                flags.upgraded.store(true, Ordering::Relaxed);
            }
            // An HTTP/2 WebSocket keeps its connection busy until it closes (upgrade/).
            if let Some(slot) = response.extensions_mut().remove::<HoldConnection>() {
                slot.hold(in_flight.another());
            }
            response.body_mut().on_connection(flags, in_flight);
            Ok::<_, Infallible>(response)
        }
    })
}

/// Reads until the first bytes show whether this is the h2 preface. None: the client closed,
/// or sent nothing within the header timeout.
async fn sniff<S: AsyncRead + Unpin>(
    stream: &mut S,
    activity: &Activity,
    until: Instant,
) -> Option<(bool, Bytes)> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        match tokio::time::timeout_at(until, stream.read_buf(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(_)) => activity.bytes_arrived(),
            // Part of a head: HTTP/1, whose header clock has run out (a 408 follows).
            Err(_) if !buf.is_empty() => return Some((false, buf.freeze())),
            Err(_) => return None,
        }
        let n = buf.len().min(H2_PREFACE.len());
        if buf[..n] != H2_PREFACE[..n] {
            return Some((false, buf.freeze()));
        }
        if n == H2_PREFACE.len() {
            return Some((true, buf.freeze()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service_future_size<F, S>(_: &F) -> usize
    where
        F: FnOnce(Arc<ConnCtx>, Arc<ConnFlags>, Arc<Activity>) -> S,
        S: hyper::service::Service<http::Request<hyper::body::Incoming>>,
    {
        std::mem::size_of::<S::Future>()
    }

    fn pipeline_future_size<F, R>(_: &F) -> usize
    where
        F: FnOnce(http::Request<hyper::body::Incoming>, &'static ConnCtx) -> R,
    {
        std::mem::size_of::<R>()
    }

    /// hyper moves the service future per request (into an h2 stream's task, into the h1
    /// dispatcher): it must stay a few words, with the pipeline's state behind a box.
    #[test]
    fn the_future_hyper_moves_per_request_is_small() {
        let moved = service_future_size(&service);
        let pipeline = pipeline_future_size(&pipeline::handle);
        println!("service future {moved} B, pipeline future {pipeline} B");
        assert!(moved <= 512, "service future is {moved} bytes");
        assert!(
            pipeline > 4 * moved,
            "pipeline future {pipeline} B: the box buys nothing"
        );
    }
}
