//! The exporter thread: drains the span queue in batches and sends each batch to the
//! collector over the hyper client the core already has (HTTP/1.1 POST of protobuf, or
//! gRPC over h2c: `TraceService/Export`). It runs on its own single-threaded runtime so an
//! export never shares a worker's time with requests. A failed export drops its batch
//! (counted) rather than retrying, so a dead collector costs one connect attempt per
//! flush interval and nothing on the request path. The collector's config (endpoint,
//! headers) is read afresh at every flush, so a reload applies to the next batch.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{encode, FinishedSpan, OtlpConfig, Protocol};
use crate::state::Shared;

pub const GRPC_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
pub const HTTP_PATH: &str = "/v1/traces";

pub struct Exporter {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Exporter {
    pub fn start(shared: Arc<Shared>) -> std::io::Result<Exporter> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("pygate-otlp".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a tokio runtime for the OTLP exporter");
                runtime.block_on(run(shared, stopped));
            })?;
        Ok(Exporter {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Full<Bytes>>),
    H2(hyper::client::conn::http2::SendRequest<Full<Bytes>>),
}

struct Connection {
    /// The endpoint and protocol the connection was made for (a reload may change them).
    key: (String, Protocol),
    sender: Sender,
}

async fn run(shared: Arc<Shared>, mut stopped: watch::Receiver<bool>) {
    let mut conn: Option<Connection> = None;
    let mut batch: Vec<FinishedSpan> = Vec::new();
    let mut waited = Duration::ZERO;
    let tick = Duration::from_millis(20);
    loop {
        let stopping = *stopped.borrow();
        let state = shared.state.load_full();
        let tracing = state.config.tracing.as_ref();
        let Some(otlp) = tracing.and_then(|t| t.otlp.as_ref()) else {
            if stopping {
                return;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), stopped.changed()).await;
            continue;
        };
        let queue = &shared.spans;
        let due = waited >= Duration::from_millis(otlp.flush_interval_ms);
        if !queue.is_empty() && (due || queue.len() >= otlp.batch_size || stopping) {
            waited = Duration::ZERO;
            while !queue.is_empty() {
                batch.clear();
                queue.pop_batch(otlp.batch_size.max(1), &mut batch);
                let service = tracing.map_or("pygate", |t| t.service_name.as_str());
                let body = encode::encode(service, &batch);
                let timeout = Duration::from_millis(otlp.timeout_ms);
                let sent = tokio::time::timeout(timeout, send(&mut conn, otlp, body)).await;
                match sent {
                    Ok(Ok(())) => {
                        queue
                            .exported
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                    _ => {
                        conn = None;
                        queue.export_failures.fetch_add(1, Ordering::Relaxed);
                        queue
                            .dropped
                            .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    }
                }
                if !stopping && queue.len() < otlp.batch_size {
                    break;
                }
            }
        }
        if stopping {
            return;
        }
        let _ = tokio::time::timeout(tick, stopped.changed()).await;
        waited += tick;
    }
}

async fn send(
    conn: &mut Option<Connection>,
    otlp: &OtlpConfig,
    body: Vec<u8>,
) -> Result<(), String> {
    let key = (otlp.endpoint.clone(), otlp.protocol);
    if conn.as_ref().is_none_or(|c| c.key != key) {
        *conn = Some(connect(otlp).await?);
    }
    let c = conn.as_mut().expect("connected above");
    let uri: Uri = otlp.endpoint.parse().map_err(|_| "endpoint".to_owned())?;
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or("").to_owned();
    let mut builder = Request::post(match otlp.protocol {
        Protocol::Http => http_path(&uri),
        Protocol::Grpc => GRPC_PATH.to_owned(),
    });
    for (name, value) in &otlp.headers {
        let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) else {
            continue;
        };
        builder = builder.header(n, v);
    }
    match &mut c.sender {
        Sender::H1(s) => {
            let req = builder
                .header(http::header::HOST, authority)
                .header(http::header::CONTENT_TYPE, "application/x-protobuf")
                .body(Full::new(Bytes::from(body)))
                .map_err(|e| e.to_string())?;
            s.ready().await.map_err(|e| e.to_string())?;
            let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
            let ok = resp.status().is_success();
            // Read the answer to the end so the connection can carry the next batch.
            let _ = resp.into_body().collect().await;
            ok.then_some(()).ok_or_else(|| "status".to_owned())
        }
        Sender::H2(s) => {
            let full = format!("http://{authority}{GRPC_PATH}");
            let req = builder
                .uri(full)
                .header(http::header::CONTENT_TYPE, "application/grpc")
                .header(http::header::TE, "trailers")
                .body(Full::new(Bytes::from(encode::grpc_frame(&body))))
                .map_err(|e| e.to_string())?;
            s.ready().await.map_err(|e| e.to_string())?;
            let resp = s.send_request(req).await.map_err(|e| e.to_string())?;
            let (head, body) = resp.into_parts();
            let collected = body.collect().await.map_err(|e| e.to_string())?;
            let status = head.headers.get("grpc-status").cloned().or_else(|| {
                collected
                    .trailers()
                    .and_then(|t| t.get("grpc-status").cloned())
            });
            match status {
                Some(s) if head.status.is_success() && s == "0" => Ok(()),
                _ => Err("grpc status".to_owned()),
            }
        }
    }
}

fn http_path(uri: &Uri) -> String {
    match uri.path_and_query().map(|p| p.as_str()) {
        None | Some("") | Some("/") => HTTP_PATH.to_owned(),
        Some(p) => p.to_owned(),
    }
}

async fn connect(otlp: &OtlpConfig) -> Result<Connection, String> {
    let uri: Uri = otlp.endpoint.parse().map_err(|_| "endpoint".to_owned())?;
    let host = uri.host().ok_or("host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| e.to_string())?;
    let _ = tcp.set_nodelay(true);
    let io = TokioIo::new(tcp);
    let sender = match otlp.protocol {
        Protocol::Http => {
            let (s, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Sender::H1(s)
        }
        Protocol::Grpc => {
            let (s, connection) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .map_err(|e| e.to_string())?;
            tokio::spawn(connection);
            Sender::H2(s)
        }
    };
    Ok(Connection {
        key: (otlp.endpoint.clone(), otlp.protocol),
        sender,
    })
}
