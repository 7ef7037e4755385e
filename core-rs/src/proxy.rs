//! Sending a request to an upstream: pick a target, get a connection, send, await the head.
//!
//! Retry rules: a failed *connect* never reached the upstream, so the next target is tried for
//! any method. A request that was written (even partly) is never resent, because its body has
//! been consumed and the upstream may have acted on it. A pooled connection that turns out to
//! be closed before the request was written is replaced by a fresh one on the same target.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::header::HOST;
use http::Request;
use hyper::body::Incoming;

use crate::body::{RequestBody, UpstreamConn};
use crate::clock::now_ms;
use crate::errors::Reject;
use crate::upstream::pool::ConnectError;
use crate::upstream::Upstream;

pub struct Forwarded {
    pub response: http::Response<Incoming>,
    pub conn: UpstreamConn,
    pub upstream_latency: Duration,
}

pub struct Failure {
    pub reject: Reject,
    /// The last target tried, for the call record.
    pub addr: Option<Arc<str>>,
}

pub async fn forward(
    upstream: &Upstream,
    preserve_host: bool,
    mut req: Request<RequestBody>,
    worker: usize,
) -> Result<Forwarded, Failure> {
    let attempts = 1 + upstream.retries as usize;
    let mut tried: Vec<usize> = Vec::with_capacity(attempts.min(upstream.targets.len()));
    let mut failure = Failure {
        reject: Reject::UpstreamUnavailable,
        addr: None,
    };
    while tried.len() < attempts {
        let Some(ti) = upstream.pick(&tried, now_ms()) else {
            break;
        };
        tried.push(ti);
        let target = &upstream.targets[ti];
        failure.addr = Some(target.addr.clone());
        if let (false, Some(host)) = (preserve_host, &target.host_header) {
            req.headers_mut().insert(HOST, host.clone());
        }
        let mut allow_reuse = true;
        loop {
            let checkout = match target
                .checkout(worker, upstream.connect_timeout, allow_reuse)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    upstream.report_failure(ti, now_ms());
                    failure.reject = match e {
                        ConnectError::Timeout => Reject::UpstreamTimeout,
                        ConnectError::Failed => Reject::UpstreamUnavailable,
                    };
                    break;
                }
            };
            let active = target.begin_request();
            let mut sender = checkout.sender;
            let sent_at = Instant::now();
            let outcome =
                tokio::time::timeout(upstream.read_timeout, sender.try_send_request(req)).await;
            match outcome {
                Ok(Ok(response)) => {
                    upstream.report_success(ti);
                    return Ok(Forwarded {
                        response,
                        upstream_latency: sent_at.elapsed(),
                        conn: UpstreamConn {
                            target: target.clone(),
                            worker,
                            sender,
                            active,
                        },
                    });
                }
                Err(_elapsed) => {
                    upstream.report_failure(ti, now_ms());
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
                        failure.reject = Reject::UpstreamUnavailable;
                        break;
                    }
                    None => {
                        upstream.report_failure(ti, now_ms());
                        failure.reject = Reject::UpstreamUnavailable;
                        return Err(failure);
                    }
                },
            }
        }
    }
    Err(failure)
}
