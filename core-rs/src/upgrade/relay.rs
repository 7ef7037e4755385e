//! Both directions of an upgraded connection, relayed as they arrive (a read is written on
//! before the next read), each watched by a frame `Scanner`. It ends when both sides have
//! closed, one side fails, a frame is over the limit (1009 to both sides), nothing moved for
//! `idle_timeout` or the socket reached `max_lifetime` (1001 to both sides).

use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use super::frames::{close_frame, Scanner};
use crate::config::WebSocketConfig;

/// What the call record says about the connection.
#[derive(Debug, Default)]
pub struct Outcome {
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub frames_in: u64,
    pub frames_out: u64,
    /// The first Close frame's code, ours included; 1006 when the connection ended without one.
    pub close_code: u16,
    pub error_kind: &'static str,
}

const ABNORMAL: u16 = 1006;
const GOING_AWAY: u16 = 1001;
const TOO_BIG: u16 = 1009;
const READ_BUF: usize = 16 * 1024;
/// Our own Close frames go to a peer that may have stopped reading.
const CLOSE_WRITE_LIMIT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, PartialEq, Eq)]
enum End {
    Eof,
    Failed,
    TooBig,
}

/// One direction's counters, shared with the relay while the pump runs.
#[derive(Default)]
struct Moved {
    bytes: AtomicU64,
    frames: AtomicU64,
}

struct Shared {
    start: Instant,
    /// Milliseconds after `start` of the last read, either way.
    last_read_ms: AtomicU64,
    first_close: AtomicU16,
}

pub async fn run<C, U>(client: C, upstream: U, cfg: WebSocketConfig) -> Outcome
where
    C: AsyncRead + AsyncWrite + Unpin,
    U: AsyncRead + AsyncWrite + Unpin,
{
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut ur, mut uw) = tokio::io::split(upstream);
    let shared = Shared {
        start: Instant::now(),
        last_read_ms: AtomicU64::new(0),
        first_close: AtomicU16::new(0),
    };
    let (inbound, outbound) = (Moved::default(), Moved::default());
    let lifetime = shared.start + Duration::from_millis(cfg.max_lifetime_ms);
    let idle = Duration::from_millis(cfg.idle_timeout_ms);
    let (mut to_upstream, mut to_client) = (
        Scanner::new(cfg.max_frame_size),
        Scanner::new(cfg.max_frame_size),
    );
    // Which side ended first, and how; the pumps borrow the halves only inside this block.
    let (ending, first_to_end_was_client) = {
        let c2u = pump(&mut cr, &mut uw, &mut to_upstream, &shared, &inbound);
        let u2c = pump(&mut ur, &mut cw, &mut to_client, &shared, &outbound);
        tokio::pin!(c2u, u2c);
        let (mut client_done, mut upstream_done) = (false, false);
        let mut first_client = None;
        let ending = loop {
            tokio::select! {
                end = &mut c2u, if !client_done => {
                    client_done = true;
                    first_client.get_or_insert(true);
                    if end != End::Eof { break Ending::Pump(end) }
                }
                end = &mut u2c, if !upstream_done => {
                    upstream_done = true;
                    first_client.get_or_insert(false);
                    if end != End::Eof { break Ending::Pump(end) }
                }
                _ = idle_for(&shared, idle) => break Ending::Idle,
                _ = tokio::time::sleep_until(lifetime) => break Ending::Lifetime,
            }
            if client_done && upstream_done {
                break Ending::Pump(End::Eof);
            }
        };
        (ending, first_client.unwrap_or(true))
    };
    let (code, reason, kind) = match ending {
        Ending::Pump(End::TooBig) => (
            TOO_BIG,
            "frame exceeds max_frame_size",
            "ws_frame_too_large",
        ),
        Ending::Idle => (GOING_AWAY, "idle timeout", "ws_idle_timeout"),
        Ending::Lifetime => (GOING_AWAY, "maximum lifetime", "ws_max_lifetime"),
        Ending::Pump(_) => (0, "", ""),
    };
    if code != 0 {
        shared.first_close.store(code, Ordering::Relaxed);
        let _ = tokio::time::timeout(CLOSE_WRITE_LIMIT, async {
            let _ = cw.write_all(&close_frame(code, reason, false)).await;
            let _ = cw.shutdown().await;
            let _ = uw.write_all(&close_frame(code, reason, true)).await;
            let _ = uw.shutdown().await;
        })
        .await;
    }
    let close_code = match shared.first_close.load(Ordering::Relaxed) {
        0 => ABNORMAL,
        c => c,
    };
    let error_kind = match (kind, close_code) {
        ("", ABNORMAL) if first_to_end_was_client => "client_closed",
        ("", ABNORMAL) => "upstream_closed",
        _ => kind,
    };
    Outcome {
        bytes_in: inbound.bytes.load(Ordering::Relaxed),
        bytes_out: outbound.bytes.load(Ordering::Relaxed),
        frames_in: inbound.frames.load(Ordering::Relaxed),
        frames_out: outbound.frames.load(Ordering::Relaxed),
        close_code,
        error_kind,
    }
}

enum Ending {
    Pump(End),
    Idle,
    Lifetime,
}

async fn pump<R, W>(
    r: &mut R,
    w: &mut W,
    scanner: &mut Scanner,
    shared: &Shared,
    moved: &Moved,
) -> End
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; READ_BUF];
    let mut held = 0;
    loop {
        let n = match r.read(&mut buf[held..]).await {
            Ok(0) => {
                let _ = w.shutdown().await;
                return End::Eof;
            }
            Ok(n) => n,
            Err(_) => return End::Failed,
        };
        let since = shared.start.elapsed().as_millis() as u64;
        shared.last_read_ms.store(since, Ordering::Relaxed);
        let total = held + n;
        let scanned = scanner.feed(&buf[..total]);
        if let Some(code) = scanned.close_code {
            let _ =
                shared
                    .first_close
                    .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed);
        }
        if scanned.safe > 0 {
            if w.write_all(&buf[..scanned.safe]).await.is_err() || w.flush().await.is_err() {
                return End::Failed;
            }
            moved
                .bytes
                .fetch_add(scanned.safe as u64, Ordering::Relaxed);
        }
        moved.frames.fetch_add(scanned.frames, Ordering::Relaxed);
        if scanned.too_big {
            return End::TooBig;
        }
        buf.copy_within(scanned.safe..total, 0);
        held = total - scanned.safe;
    }
}

/// Resolves once nothing was read either way for `idle`.
async fn idle_for(shared: &Shared, idle: Duration) {
    loop {
        let last = Duration::from_millis(shared.last_read_ms.load(Ordering::Relaxed));
        let deadline = shared.start + last + idle;
        if Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep_until(deadline).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    fn cfg(max_frame_size: u64) -> WebSocketConfig {
        WebSocketConfig {
            idle_timeout_ms: 60_000,
            max_lifetime_ms: 600_000,
            max_frame_size,
        }
    }

    #[tokio::test]
    async fn relays_both_ways_and_reports_the_close() {
        let (client, mut client_peer) = duplex(1024);
        let (upstream, mut upstream_peer) = duplex(1024);
        let relay = tokio::spawn(run(client, upstream, cfg(1024)));
        // A masked text frame "hi" from the client, then the server's close 1000.
        client_peer
            .write_all(&[0x81, 0x82, 0, 0, 0, 0, b'h', b'i'])
            .await
            .unwrap();
        let mut got = [0u8; 8];
        upstream_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[6..], b"hi");
        upstream_peer
            .write_all(&[0x88, 0x02, 0x03, 0xe8])
            .await
            .unwrap();
        let mut close = [0u8; 4];
        client_peer.read_exact(&mut close).await.unwrap();
        assert_eq!(close, [0x88, 0x02, 0x03, 0xe8]);
        drop(client_peer);
        drop(upstream_peer);
        let out = relay.await.unwrap();
        assert_eq!((out.bytes_in, out.bytes_out), (8, 4));
        assert_eq!((out.frames_in, out.frames_out), (1, 1));
        assert_eq!((out.close_code, out.error_kind), (1000, ""));
    }

    #[tokio::test]
    async fn an_oversized_frame_closes_both_sides_with_1009() {
        let (client, mut client_peer) = duplex(1024);
        let (upstream, mut upstream_peer) = duplex(1024);
        let relay = tokio::spawn(run(client, upstream, cfg(100)));
        client_peer
            .write_all(&[0x82, 0xfe, 0x01, 0x00])
            .await
            .unwrap();
        let mut close = Vec::new();
        client_peer.read_to_end(&mut close).await.unwrap();
        assert_eq!(&close[..4], &[0x88, 2 + 28, 0x03, 0xf1]);
        let mut up = Vec::new();
        upstream_peer.read_to_end(&mut up).await.unwrap();
        // Nothing of the big frame reached the upstream: only our masked Close.
        assert_eq!(up[0], 0x88);
        let out = relay.await.unwrap();
        assert_eq!(
            (out.close_code, out.error_kind),
            (1009, "ws_frame_too_large")
        );
        assert_eq!(out.bytes_in, 0);
    }

    #[tokio::test]
    async fn a_client_that_vanishes_is_recorded_as_abnormal() {
        let (client, client_peer) = duplex(1024);
        let (upstream, mut upstream_peer) = duplex(1024);
        let relay = tokio::spawn(run(client, upstream, cfg(100)));
        drop(client_peer);
        let mut rest = Vec::new();
        upstream_peer.read_to_end(&mut rest).await.unwrap();
        drop(upstream_peer);
        let out = relay.await.unwrap();
        assert_eq!((out.close_code, out.error_kind), (1006, "client_closed"));
    }
}
