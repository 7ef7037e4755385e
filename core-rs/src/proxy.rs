//! Sending a request to an upstream: pick a target, get a connection, send, await the head.
//!
//! Retry rules: a failed *connect* never reached the upstream, so the next target is tried for
//! any method. A request that was written (even partly) is never resent, because its body has
//! been consumed and the upstream may have acted on it. A pooled connection that turns out to
//! be closed before the request was written is replaced by a fresh one on the same target.
//!
//! A slow client is not a slow upstream: `read_timeout` runs only while the upstream holds
//! the request (not while the body waits for the client, whose `client_body_timeout` then
//! applies), and an upload the client broke off never counts against the target.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HOST;
use http::Request;
use hyper::body::Incoming;

use crate::body::{BodyMeter, RequestBody, UpstreamConn};
use crate::clock::now_ms;
use crate::errors::Reject;
use crate::upstream::pool::ConnectError;
use crate::upstream::Upstream;
use crate::upstream_metrics::FailureReason as Why;

pub struct Forwarded {
    pub response: http::Response<Incoming>,
    pub conn: UpstreamConn,
    pub upstream_latency: Duration,
}

pub struct Failure {
    pub reject: Reject,
}

/// Which upstream connections a request may go over.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Connections {
    /// An idle pooled one (or the worker's shared HTTP/2 one) first, else a new one.
    Pooled,
    /// Only ones opened for this request: one that will be upgraded (upgrade/) must never
    /// be shared or checked back into the pool.
    Fresh,
}

/// `tried` is set to each target as it is tried, so the call record names the last one
/// even if the call is dropped (the client left) while it connects or waits.
pub async fn forward(
    upstream: &Upstream,
    preserve_host: bool,
    mut req: Request<RequestBody>,
    worker: usize,
    connections: Connections,
    tried_addr: &mut Option<Arc<str>>,
) -> Result<Forwarded, Failure> {
    let upload = req.body().meter();
    let attempts = 1 + upstream.retries as usize;
    let mut tried: Vec<usize> = Vec::with_capacity(attempts.min(upstream.targets.len()));
    let mut failure = Failure {
        reject: Reject::UpstreamUnavailable,
    };
    while tried.len() < attempts {
        let Some(ti) = upstream.pick(&tried, now_ms()) else {
            break;
        };
        tried.push(ti);
        let target = &upstream.targets[ti];
        *tried_addr = Some(target.addr.clone());
        if let (false, Some(host)) = (preserve_host, &target.host_header) {
            req.headers_mut().insert(HOST, host.clone());
        }
        target.transport.prepare(&mut req);
        let mut allow_reuse = connections == Connections::Pooled;
        loop {
            let checkout = match target
                .checkout(worker, upstream.connect_timeout, allow_reuse)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    upstream.report_failure(ti, now_ms());
                    let (reject, reason) = match e {
                        ConnectError::Timeout => (Reject::UpstreamTimeout, Why::ConnectTimeout),
                        ConnectError::Failed => (Reject::UpstreamUnavailable, Why::Connect),
                        ConnectError::Tls => (Reject::UpstreamTls, Why::Tls),
                    };
                    upstream.count_failure(ti, worker, reason);
                    failure.reject = reject;
                    break;
                }
            };
            let active = target.begin_request();
            let mut sender = checkout.sender;
            let sent_at = Instant::now();
            let sending = sender.send(req);
            let outcome =
                within_read_timeout(sending, upstream.read_timeout, upload.as_deref()).await;
            match outcome {
                Ok(Ok(response)) => {
                    upstream.report_success(ti);
                    let upstream_latency = sent_at.elapsed();
                    let us = upstream_latency.as_micros() as u64;
                    upstream.count_answer(ti, worker, response.status().as_u16(), us);
                    return Ok(Forwarded {
                        response,
                        upstream_latency,
                        conn: UpstreamConn {
                            target: target.clone(),
                            worker,
                            sender,
                            active,
                        },
                    });
                }
                Err(TimedOut) => {
                    upstream.report_failure(ti, now_ms());
                    upstream.count_failure(ti, worker, Why::Timeout);
                    failure.reject = Reject::UpstreamTimeout;
                    return Err(failure);
                }
                Ok(Err(mut e)) => match e.take_message() {
                    Some(unsent) if checkout.reused => {
                        req = unsent;
                        allow_reuse = false;
                    }
                    Some(unsent) => {
                        req = unsent;
                        upstream.report_failure(ti, now_ms());
                        upstream.count_failure(ti, worker, Why::Closed);
                        failure.reject = Reject::UpstreamUnavailable;
                        break;
                    }
                    None => {
                        // Written in part, then broken off: by the client's upload (its
                        // fault, answered by the pipeline) or by the upstream.
                        if upload.as_ref().is_none_or(|m| m.client_fault().is_none()) {
                            upstream.report_failure(ti, now_ms());
                            upstream.count_failure(ti, worker, Why::Closed);
                        }
                        failure.reject = Reject::UpstreamUnavailable;
                        return Err(failure);
                    }
                },
            }
        }
    }
    Err(failure)
}

struct TimedOut;

/// Await the upstream's response head for at most `read_timeout` of the upstream's own
/// time: while the request body waits for the client the clock is paused (restarted from
/// the last moment the upstream was handed data).
async fn within_read_timeout<F: Future>(
    sending: F,
    read_timeout: Duration,
    upload: Option<&BodyMeter>,
) -> Result<F::Output, TimedOut> {
    let Some(upload) = upload else {
        return tokio::time::timeout(read_timeout, sending)
            .await
            .map_err(|_| TimedOut);
    };
    tokio::pin!(sending);
    let mut deadline = tokio::time::Instant::now() + read_timeout;
    loop {
        tokio::select! {
            out = &mut sending => return Ok(out),
            _ = tokio::time::sleep_until(deadline) => {
                let now = tokio::time::Instant::now();
                let Some(since) = upload.upstream_idle_since_ms() else {
                    deadline = now + read_timeout;
                    continue;
                };
                let idle = Duration::from_millis(now_ms().saturating_sub(since));
                if idle >= read_timeout {
                    return Err(TimedOut);
                }
                deadline = now + (read_timeout - idle);
            }
        }
    }
}
