"""A WebSocket client over HTTP/2 (RFC 8441) for the tests: the `h2` package speaks HTTP/2
(the extended CONNECT, flow control, resets) and `wsproto`'s frame layer makes and reads the
WebSocket frames carried in the stream's DATA. Over TLS (ALPN h2) or cleartext h2c.

One `H2Client` is one connection; `open()` sends a handshake and returns an `H2Socket` for
each stream, so that several sockets (and plain requests) can share the connection.
"""

from __future__ import annotations

import socket
import ssl
from dataclasses import dataclass, field

from h2.config import H2Configuration
from h2.connection import ConnectionState, H2Connection
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RemoteSettingsChanged,
    ResponseReceived,
    StreamEnded,
    StreamReset,
)
from h2.exceptions import ProtocolError
from h2.settings import SettingCodes
from wsproto.frame_protocol import FrameProtocol, Opcode


@dataclass
class Stream:
    """What arrived on one stream."""

    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    data: bytes = b""
    ended: bool = False
    reset: int | None = None


class H2Client:
    def __init__(
        self,
        port: int,
        tls: ssl.SSLContext | None = None,
        sni: str = "localhost",
        authority: str | None = None,
        timeout: float = 30,
    ) -> None:
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls is not None:
            tls.set_alpn_protocols(["h2"])
            raw = tls.wrap_socket(raw, server_hostname=sni)
            assert raw.selected_alpn_protocol() == "h2", raw.selected_alpn_protocol()
        self.sock = raw
        self.scheme = "https" if tls is not None else "http"
        self.authority = authority or f"127.0.0.1:{port}"
        self.conn = H2Connection(H2Configuration(client_side=True, header_encoding="utf-8"))
        self.conn.initiate_connection()
        self.streams: dict[int, Stream] = {}
        self.server_settings: dict[int, int] = {}
        # The server's GOAWAY (or True when frames came after it, which h2 refuses to read).
        self.terminated: ConnectionTerminated | bool | None = None
        self._flush()
        self.pump_until(lambda: bool(self.server_settings))

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> H2Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _flush(self) -> None:
        if data := self.conn.data_to_send():
            self.sock.sendall(data)

    def pump(self) -> bool:
        """Reads once and handles what came; False when the server closed."""
        try:
            chunk = self.sock.recv(65536)
        except (ConnectionResetError, ssl.SSLError):
            chunk = b""
        if not chunk:
            return False
        try:
            events = self.conn.receive_data(chunk)
        except ProtocolError:
            # A PING after the GOAWAY (the gateway checks the peer is there): h2 has closed.
            if self.conn.state_machine.state != ConnectionState.CLOSED:
                raise
            self.terminated = self.terminated or True
            return True
        for event in events:
            stream = self.streams.get(getattr(event, "stream_id", 0) or 0)
            if isinstance(event, RemoteSettingsChanged):
                for code, setting in event.changed_settings.items():
                    self.server_settings[int(code)] = setting.new_value
            elif isinstance(event, ResponseReceived) and stream:
                stream.headers = dict(event.headers)
                stream.status = int(stream.headers[":status"])
            elif isinstance(event, DataReceived) and stream:
                stream.data += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, StreamEnded) and stream:
                stream.ended = True
            elif isinstance(event, StreamReset) and stream:
                stream.reset = int(event.error_code)
            elif isinstance(event, ConnectionTerminated):
                self.terminated = event
        self._flush()
        return True

    def pump_until(self, done) -> None:
        while not done():
            if not self.pump():
                raise ConnectionError("the server closed the connection")

    def request(self, headers: list[tuple[str, str]], end_stream: bool) -> int:
        stream_id = self.conn.get_next_available_stream_id()
        self.streams[stream_id] = Stream()
        self.conn.send_headers(stream_id, headers, end_stream=end_stream)
        self._flush()
        return stream_id

    def open(self, path: str, headers: dict[str, str] | None = None, **pseudo: str) -> H2Socket:
        """Sends the extended CONNECT and waits for the answer (a refusal's body included)."""
        head = [
            (":method", pseudo.get("method", "CONNECT")),
            (":protocol", pseudo.get("protocol", "websocket")),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", self.authority),
            ("sec-websocket-version", "13"),
            *(headers or {}).items(),
        ]
        stream_id = self.request(head, end_stream=False)
        stream = self.streams[stream_id]
        self.pump_until(lambda: stream.status is not None or stream.reset is not None)
        if stream.status is not None and stream.status != 200:
            self.pump_until(lambda: stream.ended or stream.reset is not None)
        return H2Socket(self, stream_id)

    def get(self, path: str) -> Stream:
        head = [
            (":method", "GET"),
            (":scheme", self.scheme),
            (":path", path),
            (":authority", self.authority),
        ]
        stream = self.streams[self.request(head, end_stream=True)]
        self.pump_until(lambda: stream.ended or stream.reset is not None)
        return stream

    @property
    def enables_connect_protocol(self) -> bool:
        return self.server_settings.get(SettingCodes.ENABLE_CONNECT_PROTOCOL) == 1


@dataclass
class Message:
    opcode: Opcode
    payload: bytes | str
    # A Close frame's code (its reason is the payload).
    code: int | None = None


class H2Socket:
    """One WebSocket on one stream of an `H2Client`."""

    def __init__(self, client: H2Client, stream_id: int) -> None:
        self.client = client
        self.stream_id = stream_id
        self.frames = FrameProtocol(client=True, extensions=[])
        self._read = 0
        self._partial: list[bytes | str] = []

    @property
    def stream(self) -> Stream:
        return self.client.streams[self.stream_id]

    @property
    def status(self) -> int | None:
        return self.stream.status

    def send_bytes(self, data: bytes) -> None:
        """Raw bytes on the stream, in DATA frames as flow control allows."""
        data, conn = bytes(data), self.client.conn
        while data:
            window = conn.local_flow_control_window(self.stream_id)
            if window <= 0:
                if not self.client.pump():
                    raise ConnectionError("the server closed the connection")
                continue
            n = min(len(data), window, conn.max_outbound_frame_size)
            conn.send_data(self.stream_id, data[:n])
            data = data[n:]
            self.client._flush()

    def send(self, message: bytes | str) -> None:
        self.send_bytes(self.frames.send_data(message, fin=True))

    def close(self, code: int = 1000, reason: str = "") -> None:
        self.send_bytes(self.frames.close(code, reason))

    def end_stream(self) -> None:
        self.client.conn.end_stream(self.stream_id)
        self.client._flush()

    def reset(self) -> None:
        self.client.conn.reset_stream(self.stream_id)
        self.client._flush()

    def _next(self) -> Message | None:
        data = self.stream.data[self._read :]
        self._read = len(self.stream.data)
        if data:
            self.frames.receive_bytes(data)
        for frame in self.frames.received_frames():
            if frame.opcode is Opcode.CLOSE:
                code, reason = frame.payload
                return Message(frame.opcode, reason, int(code))
            self._partial.append(frame.payload)
            if frame.message_finished:
                parts, self._partial = self._partial, []
                joined = "".join(parts) if isinstance(parts[0], str) else b"".join(parts)
                return Message(frame.opcode, joined)
        return None

    def recv(self) -> Message:
        """The next whole message (or Close) on the stream."""
        while True:
            message = self._next()
            if message is not None:
                return message
            stream = self.stream
            if stream.ended or stream.reset is not None:
                raise ConnectionError(f"stream {self.stream_id} ended: reset={stream.reset}")
            if not self.client.pump():
                raise ConnectionError("the server closed the connection")

    def wait_ended(self) -> Stream:
        stream = self.stream
        self.client.pump_until(lambda: stream.ended or stream.reset is not None)
        return stream
