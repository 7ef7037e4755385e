"""An echo upstream on 127.0.0.1 that speaks HTTP/1.1 or HTTP/2 (h2c prior knowledge, or h2
by ALPN), over TLS or not, and says what it saw: the TLS server name (SNI) the client sent,
the protocol, the request line and headers.

It runs on a thread of the test process so a test can read what it recorded (the SNI of
every handshake, including refused ones) without a control endpoint.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
from dataclasses import dataclass, field
from pathlib import Path

import h2.config
import h2.connection
import h2.events

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@dataclass
class Seen:
    sni: list[str | None] = field(default_factory=list)  # one per TLS handshake
    requests: int = 0
    connections: int = 0


class EchoUpstream:
    def __init__(
        self,
        cert: Path | None = None,
        key: Path | None = None,
        *,
        h2_only: bool = False,
    ) -> None:
        self.seen = Seen()
        self.h2_only = h2_only
        self.ctx: ssl.SSLContext | None = None
        if cert is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            ctx.set_alpn_protocols(["h2", "http/1.1"])
            ctx.sni_callback = self._on_sni
            self.ctx = ctx
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self._lock = threading.Lock()
        self._stop = False
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _on_sni(self, _sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        with self._lock:
            self.seen.sni.append(name)

    def __enter__(self) -> EchoUpstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        try:
            # Wake accept() so the thread ends.
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            pass
        self._thread.join(5)
        self.sock.close()

    def _accept_loop(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            if self._stop:
                conn.close()
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with self._lock:
            self.seen.connections += 1
        try:
            conn.settimeout(30)
            tls = False
            if self.ctx is not None:
                try:
                    conn = self.ctx.wrap_socket(conn, server_side=True)
                except (ssl.SSLError, OSError):
                    return  # the client refused our certificate: what some tests want
                tls = True
            alpn = conn.selected_alpn_protocol() if tls else None
            first = conn.recv(len(H2_PREFACE), socket.MSG_PEEK) if not tls else b""
            if alpn == "h2" or first.startswith(H2_PREFACE[:16]) or self.h2_only:
                self._serve_h2(conn, tls)
            else:
                self._serve_h1(conn, tls)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def _reply(self, tls: bool, protocol: str, method: str, path: str, headers, body: bytes):
        with self._lock:
            self.seen.requests += 1
        sni = None
        if tls and self.seen.sni:
            sni = self.seen.sni[-1]
        return json.dumps(
            {
                "tls": tls,
                "sni": sni,
                "protocol": protocol,
                "method": method,
                "path": path,
                "headers": [[k, v] for k, v in headers],
                "body": body.decode(errors="replace"),
            }
        ).encode()

    def _serve_h1(self, conn: socket.socket, tls: bool) -> None:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
                if not buf[:1].isalpha():  # not a request line (a TLS hello, say)
                    conn.sendall(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                    return
            head, _, buf = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _version = lines[0].split(" ", 2)
            headers = [tuple(h.split(":", 1)) for h in lines[1:] if ":" in h]
            headers = [(k.strip().lower(), v.strip()) for k, v in headers]
            length = int(dict(headers).get("content-length", "0"))
            while len(buf) < length:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            body, buf = buf[:length], buf[length:]
            payload = self._reply(tls, "http/1.1", method, path, headers, body)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(payload)}\r\n\r\n".encode()
                + payload
            )

    def _serve_h2(self, conn: socket.socket, tls: bool) -> None:
        h2conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        )
        h2conn.initiate_connection()
        conn.sendall(h2conn.data_to_send())
        streams: dict[int, tuple[list, bytearray]] = {}
        while True:
            data = conn.recv(65536)
            if not data:
                return
            for event in h2conn.receive_data(data):
                if isinstance(event, h2.events.RequestReceived):
                    streams[event.stream_id] = (list(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    streams[event.stream_id][1].extend(event.data)
                    h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    headers, body = streams.pop(event.stream_id)
                    pseudo = dict(h for h in headers if h[0].startswith(":"))
                    plain = [h for h in headers if not h[0].startswith(":")]
                    plain.append((":authority", pseudo.get(":authority", "")))
                    plain.append((":scheme", pseudo.get(":scheme", "")))
                    payload = self._reply(
                        tls, "h2", pseudo[":method"], pseudo[":path"], plain, bytes(body)
                    )
                    h2conn.send_headers(
                        event.stream_id,
                        [
                            (":status", "200"),
                            ("content-type", "application/json"),
                            ("content-length", str(len(payload))),
                        ],
                    )
                    h2conn.send_data(event.stream_id, payload, end_stream=True)
            out = h2conn.data_to_send()
            if out:
                conn.sendall(out)
