//! One upstream target: its address, passive health, and a pool of keep-alive connections.
//!
//! We pool `hyper::client::conn` connections ourselves instead of using a generic client
//! because the proxy must know whether a request was sent: a failed *connect* is safe to retry
//! on another target for any method, while a request that reached the upstream is not.
//! Idle connections are kept per worker thread so a worker never waits on another's lock or
//! wakes another core to drive its connection. An HTTP/1.1 connection is checked out for one
//! request at a time; an HTTP/2 one multiplexes, so each worker keeps one and shares it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2, TrySendError};
use rustls::pki_types::ServerName;

use super::shared::SharedSlot;
use super::transport::Transport;
use super::Health;
use crate::body::RequestBody;

pub enum Sender {
    H1(http1::SendRequest<RequestBody>),
    H2(http2::SendRequest<RequestBody>),
}

impl Sender {
    pub fn is_closed(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_closed(),
            Sender::H2(s) => s.is_closed(),
        }
    }

    fn is_ready(&self) -> bool {
        match self {
            Sender::H1(s) => s.is_ready(),
            Sender::H2(s) => s.is_ready(),
        }
    }

    async fn ready(&mut self) -> hyper::Result<()> {
        match self {
            Sender::H1(s) => s.ready().await,
            Sender::H2(s) => s.ready().await,
        }
    }

    /// Send `req`; when it fails before being written the request comes back in the error.
    pub async fn send(
        &mut self,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, TrySendError<Request<RequestBody>>> {
        match self {
            Sender::H1(s) => s.try_send_request(req).await,
            Sender::H2(s) => s.try_send_request(req).await,
        }
    }
}

pub struct Target {
    pub addr: Arc<str>,
    /// The Host header upstreams see unless the route preserves the client's; built once
    /// here instead of per request.
    pub host_header: Option<http::HeaderValue>,
    pub health: Health,
    pub transport: Arc<Transport>,
    /// The name TLS sends and verifies (None without TLS).
    server_name: Option<ServerName<'static>>,
    /// Found by this across reloads (address and how it is connected to).
    pub pool_key: String,
    active: AtomicUsize,
    idle: Box<[Mutex<Vec<Sender>>]>,
    /// HTTP/2: the connection each worker shares between its requests.
    shared: Box<[SharedSlot]>,
    max_idle: AtomicUsize,
}

/// Why no connection could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectError {
    Timeout,
    Failed,
    /// The TLS handshake failed: most often the certificate was not trusted or not for the name.
    Tls,
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
    /// `transport` must have a TLS name for `addr` (`Transport::server_name_for`, checked when
    /// the upstream is built); without one the target connects without TLS.
    pub fn new(addr: &str, transport: Arc<Transport>, workers: usize, max_idle: usize) -> Target {
        let per_worker = workers.max(1);
        Target {
            addr: Arc::from(addr),
            host_header: http::HeaderValue::from_str(addr).ok(),
            health: Health::default(),
            server_name: transport.server_name_for(addr).ok().flatten(),
            pool_key: transport.pool_key(addr),
            shared: (0..if transport.multiplexed() {
                per_worker
            } else {
                0
            })
                .map(|_| SharedSlot::default())
                .collect(),
            transport,
            active: AtomicUsize::new(0),
            idle: (0..per_worker).map(|_| Mutex::new(Vec::new())).collect(),
            max_idle: AtomicUsize::new(max_idle),
        }
    }

    /// A target reached over plain HTTP/1.1 (tests and benchmarks).
    pub fn plain(addr: &str, workers: usize, max_idle: usize) -> Target {
        Target::new(addr, Arc::new(Transport::plain()), workers, max_idle)
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
        if !self.shared.is_empty() {
            return self
                .checkout_shared(worker, connect_timeout, allow_reuse)
                .await;
        }
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
        let sender = self.connect(connect_timeout).await?;
        Ok(Checkout {
            sender,
            reused: false,
        })
    }

    /// HTTP/2: the worker's connection while it is open, else a new one that becomes it.
    async fn checkout_shared(
        &self,
        worker: usize,
        connect_timeout: Duration,
        allow_reuse: bool,
    ) -> Result<Checkout, ConnectError> {
        let slot = &self.shared[worker % self.shared.len()];
        if !allow_reuse {
            let sender = self.connect(connect_timeout).await?;
            if let Sender::H2(s) = &sender {
                slot.replace(s);
            }
            return Ok(Checkout {
                sender,
                reused: false,
            });
        }
        let (sender, reused) = slot.get(|| self.connect(connect_timeout)).await?;
        Ok(Checkout {
            sender: Sender::H2(sender),
            reused,
        })
    }

    fn pop_idle(&self, worker: usize) -> Option<Sender> {
        self.idle_list(worker).lock().unwrap().pop()
    }

    pub(crate) async fn connect(&self, connect_timeout: Duration) -> Result<Sender, ConnectError> {
        let connecting = self
            .transport
            .connect(&self.addr, self.server_name.as_ref());
        tokio::time::timeout(connect_timeout, connecting)
            .await
            .map_err(|_| ConnectError::Timeout)?
    }

    /// Give a connection back after its response body was read to the end (an HTTP/2 one
    /// stays shared and needs no giving back).
    pub fn checkin(&self, worker: usize, sender: Sender) {
        if sender.is_closed() || matches!(sender, Sender::H2(_)) {
            return;
        }
        let mut idle = self.idle_list(worker).lock().unwrap();
        if idle.len() < self.max_idle.load(Ordering::Relaxed) {
            idle.push(sender);
        }
    }
}
