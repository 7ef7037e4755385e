"""HTTP/2 on a raw socket, frame by frame (hyperframe and hpack, which the `h2` package
brings): for the attack tests, which send what no well-behaved client library would."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    RstStreamFrame,
    SettingsFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class Seen:
    """What the server sent on one connection, up to the moment reading stopped."""

    frames: list[Frame] = field(default_factory=list)
    closed: bool = False

    def goaway(self) -> GoAwayFrame | None:
        return next((f for f in self.frames if isinstance(f, GoAwayFrame)), None)

    def resets(self) -> dict[int, int]:
        """Stream id -> RST_STREAM error code."""
        return {f.stream_id: f.error_code for f in self.frames if isinstance(f, RstStreamFrame)}

    def statuses(self) -> dict[int, str]:
        """Stream id -> :status of the response headers (one decoder per connection)."""
        decoder = Decoder()
        out = {}
        for f in self.frames:
            if isinstance(f, HeadersFrame):
                headers = dict(decoder.decode(f.data))
                out[f.stream_id] = headers.get(":status", headers.get(b":status"))
        return {k: v.decode() if isinstance(v, bytes) else v for k, v in out.items()}


class H2Wire:
    """One client connection: preface and SETTINGS sent, the server's SETTINGS acknowledged
    (so that its limits are in force), then frames as the test writes them."""

    def __init__(self, port: int, timeout: float = 30) -> None:
        self.port = port
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.encoder = Encoder()
        self.buffer = b""
        self.seen = Seen()
        self.send(PREFACE + SettingsFrame(0).serialize())
        settings = self.read_until(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags)
        self.server_settings = dict(settings.settings) if settings else {}
        self.send(SettingsFrame(0, flags=["ACK"]).serialize())

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> bool:
        """False when the server already closed the connection."""
        try:
            self.sock.sendall(data)
            return True
        except (BrokenPipeError, ConnectionResetError):
            self.seen.closed = True
            return False

    def block(self, path: str, method: str = "GET", extra: list | None = None) -> bytes:
        headers = [
            (":method", method),
            (":scheme", "http"),
            (":authority", f"127.0.0.1:{self.port}"),
            (":path", path),
            *(extra or []),
        ]
        # No Huffman coding: the pure-Python coder takes minutes over megabytes.
        return self.encoder.encode(headers, huffman=False)

    def headers(self, stream_id: int, path: str, end_stream: bool = True, **kw) -> bytes:
        flags = ["END_HEADERS"] + (["END_STREAM"] if end_stream else [])
        return HeadersFrame(stream_id, self.block(path, **kw), flags=flags).serialize()

    def _next_frame(self) -> Frame | None:
        while True:
            if len(self.buffer) >= 9:
                frame, length = Frame.parse_frame_header(memoryview(self.buffer[:9]))
                if len(self.buffer) >= 9 + length:
                    frame.parse_body(memoryview(self.buffer[9 : 9 + length]))
                    self.buffer = self.buffer[9 + length :]
                    return frame
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                chunk = b""
            if not chunk:
                self.seen.closed = True
                return None
            self.buffer += chunk

    def read_until(self, done) -> Frame | None:
        """Frames until `done(frame)` holds (returned), or the connection closes (None)."""
        while (frame := self._next_frame()) is not None:
            self.seen.frames.append(frame)
            if done(frame):
                return frame
        return None

    def read_to_close(self) -> Seen:
        self.read_until(lambda _: False)
        return self.seen


def continuation(stream_id: int, data: bytes, last: bool = False) -> bytes:
    return ContinuationFrame(stream_id, data, flags=["END_HEADERS"] if last else []).serialize()


def open_headers(stream_id: int, block: bytes) -> bytes:
    """A HEADERS frame whose header block goes on in CONTINUATION frames."""
    return HeadersFrame(stream_id, block, flags=["END_STREAM"]).serialize()
