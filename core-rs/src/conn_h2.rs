//! HTTP/2 on client connections: its limits (`limits.http2` in the core config, `http2:` in
//! the YAML) and the hyper builder they configure.
//!
//! The defaults are chosen against the known HTTP/2 floods: a stream count like nginx's; a
//! header list a little above `limits.max_header_bytes` (so the pipeline answers moderately
//! large heads with its JSON 431, and the h2 codec refuses larger ones before buffering
//! them, which also bounds a CONTINUATION flood); modest flow-control windows (what a
//! client may make the gateway buffer); and few remotely reset streams awaiting accept
//! (rapid reset, CVE-2023-44487: past it the connection gets GOAWAY ENHANCE_YOUR_CALM).
//!
//! SETTINGS_ENABLE_CONNECT_PROTOCOL (RFC 8441, WebSockets over HTTP/2) is advertised by
//! default: it opens nothing by itself. Only routes with `websocket` set take an extended
//! CONNECT (others answer 400), plain CONNECT stays refused, each socket is one stream under
//! `max_concurrent_streams` and the stream windows, and the handshake runs every phase an
//! HTTP/1.1 one does (upgrade/extended_connect.rs).

use hyper::server::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Http2Config {
    /// Cleartext HTTP/2 by prior knowledge (the client starts with the h2 preface).
    pub h2c: bool,
    /// Offered in ALPN on TLS listeners.
    pub over_tls: bool,
    pub max_concurrent_streams: u32,
    /// SETTINGS_MAX_HEADER_LIST_SIZE (RFC 9113: names, values and 32 bytes per field).
    pub max_header_list_size: u32,
    pub initial_stream_window: u32,
    pub initial_connection_window: u32,
    pub max_frame_size: u32,
    /// Streams the client reset before the gateway took them up.
    pub max_pending_reset_streams: usize,
    /// Streams the gateway had to reset for the client's errors (MadeYouReset).
    pub max_local_error_resets: usize,
    /// SETTINGS_ENABLE_CONNECT_PROTOCOL: WebSockets by extended CONNECT (RFC 8441).
    pub extended_connect: bool,
}

impl Default for Http2Config {
    fn default() -> Self {
        Http2Config {
            h2c: false,
            over_tls: true,
            max_concurrent_streams: 128,
            max_header_list_size: 32 * 1024,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_pending_reset_streams: 20,
            max_local_error_resets: 256,
            extended_connect: true,
        }
    }
}

impl Http2Config {
    pub fn builder(&self) -> http2::Builder<TokioExecutor> {
        let mut builder = http2::Builder::new(TokioExecutor::new());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.max_concurrent_streams)
            .max_header_list_size(self.max_header_list_size)
            .initial_stream_window_size(self.initial_stream_window)
            .initial_connection_window_size(self.initial_connection_window)
            .max_frame_size(self.max_frame_size)
            .max_pending_accept_reset_streams(self.max_pending_reset_streams)
            .max_local_error_reset_streams(self.max_local_error_resets);
        if self.extended_connect {
            builder.enable_connect_protocol();
        }
        builder
    }
}
