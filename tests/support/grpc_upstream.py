"""A real gRPC server (grpcio, h2c on 127.0.0.1) with raw-bytes methods, so no generated
protobuf code is needed, and a gRPC-over-HTTP/1.1 client for a gateway whose client side
speaks HTTP/1.1: one POST with `te: trailers`, read back with its chunked trailers."""

from __future__ import annotations

import socket
import struct
from concurrent import futures
from dataclasses import dataclass, field

import grpc

SERVICE = "test.Echo"


def _unary(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.set_trailing_metadata((("x-trailer", "kept"),))
    return b"echo:" + request


def _stream(request: bytes, context: grpc.ServicerContext):
    for i in range(int(request or b"3")):
        yield f"part-{i}".encode()


def _join(requests, context: grpc.ServicerContext) -> bytes:
    return b"+".join(requests)


def _chat(requests, context: grpc.ServicerContext):
    for request in requests:
        yield b"re:" + request


def _fail(request: bytes, context: grpc.ServicerContext) -> bytes:
    context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")


class GrpcUpstream:
    def __init__(self) -> None:
        handler = grpc.method_handlers_generic_handler(
            SERVICE,
            {
                "Unary": grpc.unary_unary_rpc_method_handler(_unary),
                "Stream": grpc.unary_stream_rpc_method_handler(_stream),
                "Fail": grpc.unary_unary_rpc_method_handler(_fail),
                "Join": grpc.stream_unary_rpc_method_handler(_join),
                "Chat": grpc.stream_stream_rpc_method_handler(_chat),
            },
        )
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.port = self.server.add_insecure_port("127.0.0.1:0")

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> GrpcUpstream:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop(0).wait(10)


def frame(message: bytes) -> bytes:
    """One length-prefixed gRPC message (not compressed)."""
    return b"\x00" + struct.pack(">I", len(message)) + message


def messages(body: bytes) -> list[bytes]:
    out, pos = [], 0
    while pos < len(body):
        (length,) = struct.unpack(">I", body[pos + 1 : pos + 5])
        out.append(body[pos + 5 : pos + 5 + length])
        pos += 5 + length
    return out


@dataclass
class GrpcReply:
    status: int
    headers: dict[str, str]
    messages: list[bytes]
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_status(self) -> str | None:
        """From the trailers, or from the headers of a trailers-only answer."""
        return self.trailers.get("grpc-status", self.headers.get("grpc-status"))


def _read_until(sock: socket.socket, buf: bytearray, marker: bytes) -> bytes:
    while marker not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        buf.extend(chunk)
    i = buf.index(marker)
    out = bytes(buf[:i])
    del buf[: i + len(marker)]
    return out


def _read_exact(sock: socket.socket, buf: bytearray, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed mid-response")
        buf.extend(chunk)
    out = bytes(buf[:n])
    del buf[:n]
    return out


def _fields(block: bytes) -> dict[str, str]:
    out = {}
    for line in block.decode("latin-1").split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            out[k.strip().lower()] = v.strip()
    return out


def call_over_http1(
    port: int, path: str, message: bytes | list[bytes], headers: dict[str, str] | None = None
) -> GrpcReply:
    """POST one message (or several) to `path` ("/test.Echo/Unary", or under a route's
    prefix)."""
    body = b"".join(frame(m) for m in (message if isinstance(message, list) else [message]))
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        "Content-Type: application/grpc",
        "TE: trailers",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in (headers or {}).items()),
    ]
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
        buf = bytearray()
        head = _read_until(sock, buf, b"\r\n\r\n").decode("latin-1")
        status = int(head.split(" ", 2)[1])
        resp_headers = _fields(head.split("\r\n", 1)[1].encode("latin-1"))
        payload, trailers = b"", {}
        if resp_headers.get("transfer-encoding") == "chunked":
            while True:
                size = int(_read_until(sock, buf, b"\r\n").split(b";")[0], 16)
                if size == 0:
                    # Trailer fields, one a line, up to an empty line.
                    lines = []
                    while line := _read_until(sock, buf, b"\r\n"):
                        lines.append(line)
                    trailers = _fields(b"\r\n".join(lines))
                    break
                payload += _read_exact(sock, buf, size)
                _read_exact(sock, buf, 2)
        else:
            payload = _read_exact(sock, buf, int(resp_headers.get("content-length", "0")))
    return GrpcReply(status, resp_headers, messages(payload), trailers)
