//! The client connection's byte stream, wrapped so that *every* refusal is our JSON error.
//!
//! hyper answers requests it cannot parse (bad request line, head larger than its buffer,
//! unsupported version) by itself, with a status line and an empty body, before any handler
//! runs. We recognise those responses on their way out, by their status and the absence of
//! our `x-request-id` header, and write our JSON error with a request id in their place.
//! Likewise a client whose request head never completes (slow headers) gets a 408 JSON when
//! hyper gives up on it, instead of a silent close. Both are logged as call records.
//!
//! `send_timeout` (nginx's): a write to a client that stopped reading waits at most this
//! long; then the write fails, hyper closes the connection, and the call in flight is
//! recorded with error_kind `send_timeout` (through `ConnFlags`).
//!
//! HTTP/2 connections use the same wrapper with shaping off: their errors are frames, and
//! an h2 DATA frame may well begin with bytes that look like an HTTP/1 status line. They
//! keep the send timeout. Bytes read to choose the protocol (conn.rs) are replayed first.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::body::ConnFlags;

use crate::conn_idle::Activity;
use crate::errors::raw_response;
use crate::pipeline::ConnCtx;
use crate::records::CallRecord;
use crate::request_id;

/// A client connection's stream: plain TCP or TLS (tls/).
pub trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send + 'static {
    /// Write what fits without waiting; from `Drop`, where nothing can be awaited.
    fn write_now(&mut self, buf: &[u8]);
}

impl ClientStream for TcpStream {
    fn write_now(&mut self, buf: &[u8]) {
        let _ = self.try_write(buf);
    }
}

impl ClientStream for tokio_rustls::server::TlsStream<TcpStream> {
    fn write_now(&mut self, buf: &[u8]) {
        // rustls encrypts into its buffer and writes what the socket takes now.
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let _ = Pin::new(&mut *self).poll_write(&mut cx, buf);
        let _ = Pin::new(&mut *self).poll_flush(&mut cx);
    }
}

pub struct ShapedIo<S: ClientStream> {
    stream: S,
    ctx: Arc<ConnCtx>,
    /// HTTP/1: rewrite hyper's bare errors and answer a stalled head with a 408.
    shape: bool,
    /// Read before hyper took over (the protocol sniff), handed to hyper first.
    replay: Bytes,
    activity: Arc<Activity>,
    /// Bytes arrived since we last wrote: a request is pending an answer.
    read_since_write: bool,
    /// Nothing was read yet (the first read is checked for the h2 preface).
    fresh: bool,
    /// An HTTP/1 connection began with the HTTP/2 preface: hyper stops without answering.
    h2_preface: bool,
    eof: bool,
    replacement: Option<(Vec<u8>, usize)>,
    flags: Arc<ConnFlags>,
    send_timeout: Duration,
    /// Made the first time the client's receive window is full, then reused.
    send_timer: Option<Pin<Box<Sleep>>>,
    /// The timer runs for the current stalled write.
    send_armed: bool,
}

/// What a connection's byte stream is shared with: the connection, its requests' flags and
/// its idle clock.
pub struct IoParts {
    pub ctx: Arc<ConnCtx>,
    pub flags: Arc<ConnFlags>,
    pub activity: Arc<Activity>,
    pub send_timeout: Duration,
}

impl<S: ClientStream> ShapedIo<S> {
    pub fn new(stream: S, parts: IoParts, http1: bool, replay: Bytes) -> ShapedIo<S> {
        let IoParts {
            ctx,
            flags,
            activity,
            send_timeout,
        } = parts;
        ShapedIo {
            stream,
            ctx,
            shape: http1,
            replay,
            activity,
            fresh: true,
            h2_preface: false,
            read_since_write: false,
            eof: false,
            replacement: None,
            flags,
            send_timeout,
            send_timer: None,
            send_armed: false,
        }
    }

    /// A write made progress (`Ready`) or is stuck (`Pending`): on a stuck one run the send
    /// timer, and fail the write once it expires.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        polled: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.send_armed = false;
            return polled;
        }
        if !self.send_armed {
            let deadline = Instant::now() + self.send_timeout;
            match self.send_timer.as_mut() {
                Some(t) => t.as_mut().reset(deadline),
                None => self.send_timer = Some(Box::pin(tokio::time::sleep_until(deadline))),
            }
            self.send_armed = true;
        }
        let timer = self.send_timer.as_mut().expect("armed above");
        if timer.as_mut().poll(cx).is_ready() {
            self.flags.send_timed_out.store(true, Ordering::Relaxed);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading (send_timeout)",
            )));
        }
        Poll::Pending
    }

    fn drive_replacement(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some((buf, pos)) = self.replacement.as_mut() {
            let polled = Pin::new(&mut self.stream).poll_write(cx, &buf[*pos..]);
            let n = ready!(self.timed(cx, polled))?;
            let Some((buf, pos)) = self.replacement.as_mut() else {
                break;
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            *pos += n;
            if *pos == buf.len() {
                self.replacement = None;
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Build our error for `status`, log it, and queue it in place of hyper's bytes.
    fn replace_with_json(&mut self, status: StatusCode) {
        let (kind, message) = match status {
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
                "header_too_large",
                "request headers exceed the configured limit",
            ),
            StatusCode::URI_TOO_LONG => {
                ("uri_too_long", "request URI exceeds the configured limit")
            }
            StatusCode::HTTP_VERSION_NOT_SUPPORTED => (
                "http_version_not_supported",
                "only HTTP/1.0 and HTTP/1.1 are supported",
            ),
            _ => ("bad_request", "malformed HTTP request"),
        };
        let id = self.log_refusal(status, kind);
        self.replacement = Some((raw_response(status, kind, message, &id), 0));
        self.read_since_write = false;
    }

    fn check_preface(&mut self, first: &[u8]) {
        if self.fresh && self.shape {
            self.fresh = false;
            self.h2_preface = first.starts_with(b"PRI * HTTP/2.0\r\n");
        }
    }

    fn log_refusal(&self, status: StatusCode, kind: &'static str) -> String {
        record_refusal(&self.ctx, status, kind)
    }
}

/// Count and record a refusal made before any request was parsed; its request id.
pub fn record_refusal(ctx: &ConnCtx, status: StatusCode, kind: &'static str) -> String {
    let id = request_id::new_id();
    let shared = &ctx.shared;
    shared
        .stats
        .worker(ctx.worker)
        .count_response(status.as_u16());
    if !shared.state.load().record_calls {
        return id;
    }
    let mut record = CallRecord::begin(id.clone(), ctx.peer.ip(), ctx.tls.as_ref());
    record.status = status.as_u16();
    record.error_kind = kind;
    shared.records.push(record);
    id
}

/// If `buf` begins with one of hyper's own bodiless error responses, its status.
fn hyper_error_status(buf: &[u8]) -> Option<StatusCode> {
    let rest = buf.strip_prefix(b"HTTP/1.1 ")?;
    let code: u16 = std::str::from_utf8(rest.get(..3)?).ok()?.parse().ok()?;
    if !matches!(code, 400 | 414 | 431 | 505) {
        return None;
    }
    let head_end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = buf[..head_end].to_ascii_lowercase();
    let ours = head.windows(15).any(|w| w == b"\r\nx-request-id:");
    if ours {
        return None;
    }
    StatusCode::from_u16(code).ok()
}

impl<S: ClientStream> AsyncRead for ShapedIo<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.replay.is_empty() {
            let n = self.replay.len().min(buf.remaining());
            let head = self.replay.split_to(n);
            buf.put_slice(&head);
            self.read_since_write = true;
            self.activity.bytes_arrived();
            self.check_preface(&head);
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        if buf.filled().len() == before {
            self.eof = true;
        } else {
            self.read_since_write = true;
            self.activity.bytes_arrived();
            if self.fresh {
                self.check_preface(&buf.filled()[before..]);
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<S: ClientStream> ShapedIo<S> {
    /// After a 101 the stream carries WebSocket frames (upgrade/), never hyper's answers.
    fn shaping(&self) -> bool {
        self.shape && !self.flags.upgraded.load(Ordering::Relaxed)
    }
}

impl<S: ClientStream> AsyncWrite for ShapedIo<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drive_replacement(cx))?;
        if let Some(status) = self.shaping().then(|| hyper_error_status(buf)).flatten() {
            self.replace_with_json(status);
            let _ = self.drive_replacement(cx)?;
            return Poll::Ready(Ok(buf.len()));
        }
        let polled = Pin::new(&mut self.stream).poll_write(cx, buf);
        let n = ready!(self.timed(cx, polled))?;
        if n > 0 {
            self.read_since_write = false;
        }
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drive_replacement(cx))?;
        let first = bufs
            .iter()
            .find(|b| !b.is_empty())
            .filter(|_| self.shaping());
        if let Some(status) = first.and_then(|b| hyper_error_status(b)) {
            self.replace_with_json(status);
            let _ = self.drive_replacement(cx)?;
            return Poll::Ready(Ok(bufs.iter().map(|b| b.len()).sum()));
        }
        let polled = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        let n = ready!(self.timed(cx, polled))?;
        if n > 0 {
            self.read_since_write = false;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive_replacement(cx))?;
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drive_replacement(cx))?;
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl<S: ClientStream> Drop for ShapedIo<S> {
    fn drop(&mut self) {
        // The connection was dropped while a request head was arriving and nothing was
        // answered: its header timeout fired (conn_idle.rs), or hyper stopped at an h2
        // preface. The socket is still open; a small response fits the send buffer, so a
        // write that does not wait is enough.
        let gave_up_sending = self.flags.send_timed_out.load(Ordering::Relaxed);
        let stalled_head = self.read_since_write && !self.eof && self.replacement.is_none();
        if self.shaping() && stalled_head && !gave_up_sending {
            let (status, kind, message) = if self.h2_preface {
                (
                    StatusCode::HTTP_VERSION_NOT_SUPPORTED,
                    "http_version_not_supported",
                    "HTTP/2 is served over TLS (ALPN h2), or in cleartext with http2.h2c on",
                )
            } else {
                (
                    StatusCode::REQUEST_TIMEOUT,
                    "request_timeout",
                    "the request head was not received in time",
                )
            };
            let id = self.log_refusal(status, kind);
            let raw = raw_response(status, kind, message, &id);
            self.stream.write_now(&raw);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_hyper_bare_errors_only() {
        let hyper_431 =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        assert_eq!(
            hyper_error_status(hyper_431),
            Some(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
        let ours = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\nx-request-id: a\r\n\r\n{}";
        assert_eq!(hyper_error_status(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(hyper_error_status(ok), None);
        assert_eq!(hyper_error_status(b"HTTP/1.1 400 Bad"), None);
    }
}
