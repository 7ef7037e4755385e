//! A client connection's clocks: `header_timeout` (a request head, once begun, must be
//! complete in time) and `keepalive_timeout` (how long a connection with no request in flight
//! stays open), and the server's stop signal, around hyper's connection future.
//!
//! hyper's own header timer runs from "ready for the next head", so it would also close idle
//! keep-alive connections; it is off (conn.rs) and this module runs both clocks instead.
//! State is kept in atomics by the connection's parts: the byte stream (conn_io.rs) says when
//! bytes arrive, and each request holds an `InFlight` from the moment hyper hands it to the
//! pipeline until its response body is dropped.

use std::future::{poll_fn, Future};
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// Timestamps are nanoseconds since `born` plus one, so that 0 can mean "none".
pub struct Activity {
    born: Instant,
    in_flight: AtomicU32,
    /// When the connection last had no request in flight (at first: when it was accepted).
    idle_since: AtomicU64,
    /// When the first byte of a request head arrived on an idle connection; 0: none yet.
    head_since: AtomicU64,
    /// A request has been handed over: later waits are keep-alive waits.
    served: AtomicBool,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            born: Instant::now(),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(1),
            head_since: AtomicU64::new(0),
            served: AtomicBool::new(false),
        })
    }

    fn stamp(&self) -> u64 {
        self.born.elapsed().as_nanos() as u64 + 1
    }

    fn at(&self, stamp: u64, after: Duration) -> Instant {
        self.born + Duration::from_nanos(stamp - 1) + after
    }

    /// Called by the byte stream for every read that brought bytes.
    pub fn bytes_arrived(&self) {
        let idle = self.in_flight.load(Ordering::Relaxed) == 0;
        if idle && self.head_since.load(Ordering::Relaxed) == 0 {
            self.head_since.store(self.stamp(), Ordering::Relaxed);
        }
    }

    /// A request head is complete and goes to the pipeline.
    pub fn enter(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.head_since.store(0, Ordering::Relaxed);
        self.served.store(true, Ordering::Relaxed);
        InFlight(self.clone())
    }

    fn deadline(&self, timeouts: &Timeouts) -> Option<(Instant, Expiry)> {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return None;
        }
        let idle_since = self.idle_since.load(Ordering::Relaxed);
        if !timeouts.http1 {
            // HTTP/2 frames (PING, SETTINGS, a header block in pieces) do not make a
            // connection busy: only a request in flight does.
            return Some((self.at(idle_since, timeouts.keepalive), Expiry::Idle));
        }
        let head_since = self.head_since.load(Ordering::Relaxed);
        if head_since != 0 {
            return Some((self.at(head_since, timeouts.header), Expiry::Head));
        }
        // nginx's client_header_timeout covers the wait for a connection's first request.
        let wait = match self.served.load(Ordering::Relaxed) {
            true => timeouts.keepalive,
            false => timeouts.header,
        };
        Some((self.at(idle_since, wait), Expiry::Idle))
    }
}

/// Held by a request from its head to the drop of its response body.
pub struct InFlight(Arc<Activity>);

impl InFlight {
    /// One more mark on the same connection, for what outlives the response body (an
    /// HTTP/2 WebSocket).
    pub fn another(&self) -> InFlight {
        self.0.enter()
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        if activity.in_flight.fetch_sub(1, Ordering::Relaxed) == 1 {
            // Bytes read while the request was in flight were its body (or a pipelined head
            // hyper already holds): the next head's clock starts at its next byte.
            activity.head_since.store(0, Ordering::Relaxed);
            activity
                .idle_since
                .store(activity.stamp(), Ordering::Relaxed);
        }
    }
}

#[derive(Clone, Copy)]
pub struct Timeouts {
    pub header: Duration,
    pub keepalive: Duration,
    /// An HTTP/1 connection: a head that started arriving is on the header clock.
    pub http1: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Expiry {
    /// A request head did not complete in time: the connection is dropped (the byte stream
    /// answers 408 on HTTP/1).
    Head,
    /// No request for too long: HTTP/1 closes; HTTP/2 says GOAWAY and closes.
    Idle,
}

/// What ties a connection to its worker: the stop signal and the count of live connections
/// (the worker waits for every `alive` sender to be dropped).
#[derive(Clone)]
pub struct Lifeline {
    pub stop: watch::Receiver<Option<Duration>>,
    pub alive: mpsc::Sender<()>,
}

/// Runs `conn` until it ends, a clock expires or the server stops. `close` starts hyper's
/// graceful shutdown (finish what is in flight, take nothing new).
pub async fn drive<C, F>(conn: C, close: F, activity: Arc<Activity>, t: Timeouts, life: Lifeline)
where
    C: Future,
    F: Fn(Pin<&mut C>),
{
    let Lifeline { mut stop, alive } = life;
    let mut conn = pin!(conn);
    let mut stopped = pin!(async move {
        let _ = stop.wait_for(Option::is_some).await;
    });
    let mut sleep = pin!(tokio::time::sleep(Duration::ZERO));
    let mut armed: Option<Instant> = None;
    let mut closing = false;
    // An idle HTTP/2 connection told GOAWAY waits for its peer's PING answer; one that
    // never answers is dropped after one more keep-alive period.
    let mut give_up: Option<Instant> = None;
    poll_fn(|cx| loop {
        if conn.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        if let Some(at) = give_up {
            if armed != Some(at) {
                sleep.as_mut().reset(at);
                armed = Some(at);
            }
            return match sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(()),
                Poll::Pending => Poll::Pending,
            };
        }
        if closing {
            return Poll::Pending;
        }
        if stopped.as_mut().poll(cx).is_ready() {
            closing = true;
            close(conn.as_mut());
            continue;
        }
        let Some((deadline, expiry)) = activity.deadline(&t) else {
            armed = None;
            return Poll::Pending;
        };
        if armed != Some(deadline) {
            sleep.as_mut().reset(deadline);
            armed = Some(deadline);
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        armed = None;
        match (expiry, t.http1) {
            (Expiry::Idle, false) => {
                closing = true;
                give_up = Some(deadline + t.keepalive);
                close(conn.as_mut());
            }
            _ => return Poll::Ready(()),
        }
    })
    .await;
    drop(alive);
}
