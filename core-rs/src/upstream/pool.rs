//! One upstream target: its address, passive health, and a pool of keep-alive connections.
//!
//! We pool `hyper::client::conn::http1` connections ourselves instead of using a generic client
//! because the proxy must know whether a request was sent: a failed *connect* is safe to retry
//! on another target for any method, while a request that reached the upstream is not.
//! Idle connections are kept per worker thread so a worker never waits on another's lock or
//! wakes another core to drive its connection.

use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::client::conn::http1::{Builder, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::Health;
use crate::body::RequestBody;

pub type Sender = SendRequest<RequestBody>;

pub struct Target {
    pub addr: Arc<str>,
    /// The Host header upstreams see unless the route preserves the client's; built once
    /// here instead of per request.
    pub host_header: Option<http::HeaderValue>,
    pub health: Health,
    active: AtomicUsize,
    idle: Box<[Mutex<Vec<Sender>>]>,
    max_idle: AtomicUsize,
}

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    Timeout,
    Failed,
}

/// A connection ready to take one request.
pub struct Checkout {
    pub sender: Sender,
    /// Reused connections may have been closed by the upstream a moment ago; a request that
    /// fails on one before being written is retried on a fresh connection.
    pub reused: bool,
}

/// Counts a request against the target for least-connections until dropped.
pub struct ActiveRequest(Arc<Target>);

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Target {
    pub fn new(addr: &str, workers: usize, max_idle: usize) -> Target {
        Target {
            addr: Arc::from(addr),
            host_header: http::HeaderValue::from_str(addr).ok(),
            health: Health::default(),
            active: AtomicUsize::new(0),
            idle: (0..workers.max(1))
                .map(|_| Mutex::new(Vec::new()))
                .collect(),
            max_idle: AtomicUsize::new(max_idle),
        }
    }

    pub fn set_max_idle(&self, max_idle: usize) {
        self.max_idle.store(max_idle, Ordering::Relaxed);
    }

    pub fn active(&self) -> usize {
        self.active.load(Ordering::Relaxed)
    }

    pub fn begin_request(self: &Arc<Self>) -> ActiveRequest {
        self.active.fetch_add(1, Ordering::Relaxed);
        ActiveRequest(self.clone())
    }

    fn idle_list(&self, worker: usize) -> &Mutex<Vec<Sender>> {
        &self.idle[worker % self.idle.len()]
    }

    /// An idle pooled connection if one is still usable, else a new one.
    pub async fn checkout(
        &self,
        worker: usize,
        connect_timeout: Duration,
        allow_reuse: bool,
    ) -> Result<Checkout, ConnectError> {
        while let Some(mut sender) = allow_reuse.then(|| self.pop_idle(worker)).flatten() {
            if sender.is_closed() {
                continue;
            }
            // A connection returned right after its last response may need one turn of its
            // driver task before it reports ready again.
            if sender.is_ready() || sender.ready().await.is_ok() {
                return Ok(Checkout {
                    sender,
                    reused: true,
                });
            }
        }
        let sender = tokio::time::timeout(connect_timeout, self.connect())
            .await
            .map_err(|_| ConnectError::Timeout)?
            .map_err(|_| ConnectError::Failed)?;
        Ok(Checkout {
            sender,
            reused: false,
        })
    }

    fn pop_idle(&self, worker: usize) -> Option<Sender> {
        self.idle_list(worker).lock().unwrap().pop()
    }

    async fn connect(&self) -> io::Result<Sender> {
        let stream = TcpStream::connect(&*self.addr).await?;
        stream.set_nodelay(true)?;
        let (sender, conn) = Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(io::Error::other)?;
        tokio::spawn(async move {
            // Errors here surface to the request that was using the connection.
            let _ = conn.await;
        });
        Ok(sender)
    }

    /// Give a connection back after its response body was read to the end.
    pub fn checkin(&self, worker: usize, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.idle_list(worker).lock().unwrap();
        if idle.len() < self.max_idle.load(Ordering::Relaxed) {
            idle.push(sender);
        }
    }
}
