//! Listeners and worker threads.
//!
//! Each worker is one thread running a single-threaded tokio runtime with its own
//! `SO_REUSEPORT` listener, so the kernel spreads connections across workers and a connection
//! never moves between threads (the nginx model). Shutdown stops accepting, lets hyper finish
//! in-flight requests and close idle keep-alive connections, and gives up after the grace.
//! Several listeners (say :80 and :443): every worker accepts on each of them. A TLS
//! listener's connections are handshaken in their own task (tls/), then served the same way.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use crate::clock::now_ns;
use crate::conn::serve_connection;
use crate::conn_idle::Lifeline;
use crate::pipeline::ConnCtx;
use crate::plugins::rate_limit::SWEEP_INTERVAL;
use crate::state::Shared;
use crate::tls;

pub struct Server {
    workers: Vec<JoinHandle<bool>>,
    /// `Some(grace)` tells the workers to shut down.
    stop: watch::Sender<Option<Duration>>,
    pub local_addr: SocketAddr,
    /// Every listener's address, in config order.
    pub local_addrs: Vec<SocketAddr>,
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
        let addrs = shared.state.load().listen_addrs();
        // Per worker, one socket per listener. With port 0 the first bind picks the port;
        // the other workers join that same port.
        let mut local_addrs = Vec::with_capacity(addrs.len());
        let mut sockets: Vec<Vec<std::net::TcpListener>> =
            (0..shared.workers).map(|_| Vec::new()).collect();
        for addr in addrs {
            let first = bind(addr)?;
            let local_addr = first.local_addr()?;
            local_addrs.push(local_addr);
            sockets[0].push(first);
            for worker in sockets.iter_mut().skip(1) {
                worker.push(bind(local_addr)?);
            }
        }
        let (stop, stop_rx) = watch::channel(None);
        let mut workers = Vec::with_capacity(sockets.len());
        for (index, listeners) in sockets.into_iter().enumerate() {
            let shared = shared.clone();
            let stop_rx = stop_rx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("pygate-worker-{index}"))
                .spawn(move || run_worker(index, listeners, shared, stop_rx))?;
            workers.push(handle);
        }
        Ok(Server {
            workers,
            stop,
            local_addr: local_addrs[0],
            local_addrs,
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
    listeners: Vec<std::net::TcpListener>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<Option<Duration>>,
) -> bool {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the worker");
    let clean = runtime.block_on(async move {
        let listeners: Vec<TcpListener> = listeners
            .into_iter()
            .map(|l| TcpListener::from_std(l).expect("a listener in the runtime"))
            .collect();
        // Every connection holds a sender; the receiver sees the end once all are gone.
        let (alive, mut all_closed) = mpsc::channel::<()>(1);
        let life = Lifeline {
            stop: stop.clone(),
            alive,
        };
        if index == 0 {
            tokio::spawn(sweep_rate_limits(shared.clone()));
        }
        let mut next = 0;
        let grace = loop {
            tokio::select! {
                (listener, accepted) = accept_any(&listeners, &mut next) => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        accepted_on(listener, stream, peer, index, &shared, &life);
                    }
                    // Out of file descriptors and the like: back off instead of spinning.
                    Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
                },
                _ = stop.changed() => break stop.borrow().unwrap_or_default(),
            }
        };
        drop(listeners);
        drop(life);
        tokio::select! {
            _ = all_closed.recv() => true,
            _ = tokio::time::sleep(grace) => false,
        }
    });
    // What the runtime still holds is dropped below, on this thread: those calls were cut
    // by the shutdown, and their records say so (records/call_log.rs).
    crate::records::worker_stopped();
    drop(runtime);
    clean
}

/// The next connection on any of the worker's listeners, starting the search one listener
/// further each time so that a busy listener cannot starve the others.
async fn accept_any(
    listeners: &[TcpListener],
    next: &mut usize,
) -> (usize, io::Result<(TcpStream, SocketAddr)>) {
    std::future::poll_fn(|cx| {
        for offset in 0..listeners.len() {
            let i = (*next + offset) % listeners.len();
            if let Poll::Ready(accepted) = listeners[i].poll_accept(cx) {
                *next = (i + 1) % listeners.len();
                return Poll::Ready((i, accepted));
            }
        }
        Poll::Pending
    })
    .await
}

fn accepted_on(
    listener: usize,
    stream: TcpStream,
    peer: SocketAddr,
    worker: usize,
    shared: &Arc<Shared>,
    life: &Lifeline,
) {
    let tls = shared
        .state
        .load()
        .listeners
        .get(listener)
        .and_then(|l| l.tls.clone());
    let Some(tls) = tls else {
        return serve_connection(stream, peer, worker, shared, life, None);
    };
    let shared = shared.clone();
    let life = life.clone();
    tokio::spawn(async move {
        let ctx = ConnCtx {
            shared: shared.clone(),
            peer,
            worker,
            tls: None,
        };
        if let tls::Accepted::Tls(stream, info) = tls::accept(stream, &tls, &ctx).await {
            serve_connection(*stream, peer, worker, &shared, &life, Some(info));
        }
    });
}

async fn sweep_rate_limits(shared: Arc<Shared>) {
    let mut tick = tokio::time::interval(SWEEP_INTERVAL);
    loop {
        tick.tick().await;
        let state = shared.state.load_full();
        for route in &state.routes {
            for plugin in route.plugins.iter() {
                plugin.sweep(now_ns());
            }
        }
        if let Some(auth_failures) = &state.auth_failures {
            auth_failures.sweep(now_ns());
        }
    }
}
