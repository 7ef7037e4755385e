//! Listeners and worker threads.
//!
//! Each worker is one thread running a single-threaded tokio runtime with its own
//! `SO_REUSEPORT` listener, so the kernel spreads connections across workers and a connection
//! never moves between threads (the nginx model). Shutdown stops accepting, lets hyper finish
//! in-flight requests and close idle keep-alive connections, and gives up after the grace.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::body::ConnFlags;
use crate::clock::now_ns;
use crate::conn_io::ShapedIo;
use crate::pipeline::{self, ConnCtx};
use crate::plugins::rate_limit::SWEEP_INTERVAL;
use crate::state::Shared;

pub struct Server {
    workers: Vec<JoinHandle<bool>>,
    /// `Some(grace)` tells the workers to shut down.
    stop: watch::Sender<Option<Duration>>,
    pub local_addr: SocketAddr,
}

fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

impl Server {
    pub fn start(shared: Arc<Shared>) -> io::Result<Server> {
        let addr = shared.state.load().listen;
        let first = bind(addr)?;
        // With port 0 the first bind picks the port; the other workers join that same port.
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..shared.workers {
            listeners.push(bind(local_addr)?);
        }
        let (stop, stop_rx) = watch::channel(None);
        let mut workers = Vec::with_capacity(listeners.len());
        for (index, listener) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let stop_rx = stop_rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("pygate-worker-{index}"))
                .spawn(move || run_worker(index, listener, shared, stop_rx))?;
            workers.push(handle);
        }
        Ok(Server {
            workers,
            stop,
            local_addr,
        })
    }

    /// Blocks until every worker has finished; true if all finished within `grace`.
    pub fn shutdown(self, grace: Duration) -> bool {
        let _ = self.stop.send(Some(grace));
        // Join every worker before answering, even after one reported an unclean stop.
        let finished: Vec<bool> = self
            .workers
            .into_iter()
            .map(|w| w.join().unwrap_or(false))
            .collect();
        finished.into_iter().all(|clean| clean)
    }
}

fn run_worker(
    index: usize,
    listener: std::net::TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the worker");
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener).expect("a listener in the runtime");
        let graceful = GracefulShutdown::new();
        if index == 0 {
            tokio::spawn(sweep_rate_limits(shared.clone()));
        }
        let grace = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => serve_connection(stream, peer, index, &shared, &graceful),
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
                _ = stop.changed() => break stop.borrow().unwrap_or_default(),
            }
        };
        drop(listener);
        tokio::select! {
            _ = graceful.shutdown() => true,
            _ = tokio::time::sleep(grace) => false,
        }
    })
}

fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    worker: usize,
    shared: &Arc<Shared>,
    graceful: &GracefulShutdown,
) {
    let _ = stream.set_nodelay(true);
    let limits = shared.state.load().limits.clone();
    let ctx = Arc::new(ConnCtx {
        shared: shared.clone(),
        peer,
        worker,
    });
    let flags = Arc::new(ConnFlags::default());
    let send_timeout = Duration::from_millis(limits.send_timeout_ms.max(1));
    let io = TokioIo::new(ShapedIo::new(
        stream,
        ctx.clone(),
        flags.clone(),
        send_timeout,
    ));
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        let flags = flags.clone();
        async move {
            let mut response = pipeline::handle(req, &ctx).await;
            response.body_mut().on_connection(flags);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(Duration::from_millis(limits.header_timeout_ms.max(1)))
        // hyper's own ceiling sits above the operator's limits so that the pipeline sees
        // oversized heads and answers them; beyond it hyper refuses (and conn_io reshapes).
        .max_buf_size((limits.max_header_bytes + limits.max_uri_bytes + 8192).max(16 * 1024));
    let connection = graceful.watch(builder.serve_connection(io, service));
    let stats = shared.stats.worker(worker);
    stats.connections_active.fetch_add(1, Ordering::Relaxed);
    let shared = shared.clone();
    tokio::spawn(async move {
        let _ = connection.await;
        let stats = shared.stats.worker(worker);
        stats.connections_active.fetch_sub(1, Ordering::Relaxed);
    });
}

async fn sweep_rate_limits(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let state = shared.state.load_full();
        for route in &state.routes {
            if let Some(limiter) = &route.rate_limit {
                limiter.sweep(now_ns());
            }
        }
        if let Some(auth_failures) = &state.auth_failures {
            auth_failures.sweep(now_ns());
        }
    }
}
