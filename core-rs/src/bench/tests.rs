use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A tiny HTTP/1.1 server on loopback answering every request with `response` after `delay`.
fn serve(response: &'static [u8], delay: Duration) -> String {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap().to_string()).unwrap();
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut pending = Vec::new();
                    loop {
                        let n = match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        pending.extend_from_slice(&buf[..n]);
                        while let Some(i) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
                            pending.drain(..i + 4);
                            tokio::time::sleep(delay).await;
                            if s.write_all(response).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
    });
    rx.recv().unwrap()
}

fn spec(url: String) -> BenchSpec {
    serde_json::from_value(serde_json::json!({"url": url, "connections": 4, "threads": 2})).unwrap()
}

#[test]
fn request_budget_is_exact_and_statuses_are_counted() {
    let addr = serve(
        b"HTTP/1.1 201 Created\r\ncontent-length: 5\r\n\r\nhello",
        Duration::ZERO,
    );
    let mut s = spec(format!("http://{addr}/x"));
    s.requests = Some(500);
    let r = run(s, b"", Arc::new(Progress::default())).unwrap();
    assert_eq!(r.requests, 500);
    assert_eq!(r.statuses.get(&201), Some(&500));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
    assert!(r.latency_ms["p50"] > 0.0);
}

#[test]
fn chunked_bodies_are_read_to_the_end() {
    let addr = serve(
        b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        Duration::ZERO,
    );
    let mut s = spec(format!("http://{addr}/"));
    s.requests = Some(100);
    let r = run(s, b"", Arc::new(Progress::default())).unwrap();
    assert_eq!(r.statuses.get(&200), Some(&100));
    assert!(r.errors.is_empty(), "{:?}", r.errors);
}

#[test]
fn open_loop_holds_the_rate_and_charges_queueing() {
    // 40 req/s on 2 connections against a server that takes 100 ms: each connection can only
    // do 10/s, so requests queue behind their intended times and latency grows past 100 ms.
    let addr = serve(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        Duration::from_millis(100),
    );
    let mut s = spec(format!("http://{addr}/"));
    s.connections = 2;
    s.threads = 1;
    s.rate = Some(40.0);
    s.duration_ms = Some(1000);
    let r = run(s, b"", Arc::new(Progress::default())).unwrap();
    assert_eq!(r.mode, "open");
    assert!(r.latency_ms["max"] > 300.0, "{:?}", r.latency_ms);

    let mut fast = spec(format!(
        "http://{}/",
        serve(
            b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
            Duration::ZERO
        )
    ));
    fast.rate = Some(200.0);
    fast.duration_ms = Some(1000);
    let r = run(fast, b"", Arc::new(Progress::default())).unwrap();
    assert!((180..=220).contains(&r.requests), "{} requests", r.requests);
}

#[test]
fn refused_connections_are_errors_not_hangs() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut s = spec(format!("http://{addr}/"));
    s.duration_ms = Some(300);
    let r = run(s, b"", Arc::new(Progress::default())).unwrap();
    assert_eq!(r.requests, 0);
    assert!(
        r.errors.get("connect").copied().unwrap_or(0) > 0,
        "{:?}",
        r.errors
    );
}

#[test]
fn bad_specs_are_refused() {
    let s = spec("ftp://x/".into());
    assert!(s.prepare(b"").unwrap_err().contains("http://"));
    let mut s = spec("http://127.0.0.1:1/".into());
    s.headers = vec![("bad header".into(), "v".into())];
    assert!(s.prepare(b"").unwrap_err().starts_with("header"));
    let mut s = spec("http://127.0.0.1:1/".into());
    s.method = "POST".into();
    let p = s.prepare(b"abc").unwrap();
    let text = String::from_utf8(p.request).unwrap();
    assert!(text.ends_with("content-length: 3\r\n\r\nabc"), "{text}");
}

#[test]
fn slow_answers_count_as_timeouts() {
    let addr = serve(
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n",
        Duration::from_secs(5),
    );
    let mut s = spec(format!("http://{addr}/"));
    s.connections = 2;
    s.timeout_ms = 200;
    s.duration_ms = Some(700);
    let r = run(s, b"", Arc::new(Progress::default())).unwrap();
    assert_eq!(r.requests, 0);
    assert!(
        r.errors.get("timeout").copied().unwrap_or(0) >= 2,
        "{:?}",
        r.errors
    );
}
