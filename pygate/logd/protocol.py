"""The logd wire format on its Unix socket: length-prefixed frames, nothing else.

    request:  op u8 | length u32 | payload        (little-endian)
    reply:    status u8 | length u32 | payload

An insert's payload is `table_len u16 | table | token_len u16 | token | RowBinary`,
the bytes the core produced, untouched. `logs serve` sends its statements as SERVE_*
frames and gets CH_ERROR (a ClickHouse code and message) for a refused or failed one.
The first request on a connection must be
HELLO with the client's identity (JSON); logd answers with its own, and refuses a
client whose store differs, so nobody ever reads or writes another store's data.
"""

from __future__ import annotations

import hashlib
import os
import socket
import struct

from pygate.config import LoadedConfig

HELLO, INSERT, QUERY, BENCH_RUN, RETENTION, PING = range(1, 7)
# `pygate logs serve` through logd (pygate/chserver/wire.py has their payloads).
SERVE_OPEN, SERVE_RUN, SERVE_CHECK = range(7, 10)
# REFUSED: the statement check refused a query before it ran (the admin API's 403).
OK, UNAVAILABLE, REJECTED, FAILED, WRONG_STORE, CH_ERROR, REFUSED = range(7)

_HEADER = struct.Struct("<BI")
_SHORT = struct.Struct("<H")
# A batch of 100k rows is a few tens of MB; anything past this is not ours.
MAX_FRAME = 1 << 31
_SUN_PATH_MAX = 107


class ProtocolError(Exception):
    """The peer sent something that is not a logd frame."""


def send_frame(sock: socket.socket, kind: int, payload: bytes | memoryview) -> None:
    sock.sendall(_HEADER.pack(kind, len(payload)))
    if payload:
        sock.sendall(payload)


def recv_frame(sock: socket.socket) -> tuple[int, bytes] | None:
    """The next frame, or None when the peer closed cleanly between frames."""
    header = _recv_exact(sock, _HEADER.size, allow_eof=True)
    if header is None:
        return None
    kind, length = _HEADER.unpack(header)
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes is too large")
    return kind, _recv_exact(sock, length) if length else b""


def _recv_exact(sock: socket.socket, size: int, *, allow_eof: bool = False) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            if got == 0 and allow_eof:
                return None
            raise ConnectionError("logd connection closed mid-frame")
        got += n
    return bytes(buffer)


def pack_strings(*parts: str) -> bytes:
    out = bytearray()
    for part in parts:
        raw = part.encode()
        out += _SHORT.pack(len(raw)) + raw
    return bytes(out)


def unpack_strings(payload: bytes, count: int) -> tuple[list[str], memoryview]:
    view = memoryview(payload)
    pos = 0
    parts: list[str] = []
    for _ in range(count):
        if pos + 2 > len(view):
            raise ProtocolError("truncated string")
        (length,) = _SHORT.unpack_from(view, pos)
        pos += 2
        if pos + length > len(view):
            raise ProtocolError("truncated string")
        parts.append(bytes(view[pos : pos + length]).decode())
        pos += length
    return parts, view[pos:]


def store_fingerprint(loaded: LoadedConfig) -> str:
    """Names the store without its password: chdb's absolute path, or the server URL."""
    return hashlib.sha256(loaded.store.url.encode()).hexdigest()[:16]


def identity(loaded: LoadedConfig) -> dict[str, str]:
    return {
        "config": loaded.abspath,
        "store": loaded.store.url,
        "store_fingerprint": store_fingerprint(loaded),
    }


def socket_path(loaded: LoadedConfig) -> str:
    """Where logd listens for `loaded` (log.daemon.socket, else by the store)."""
    config_dir = os.path.dirname(loaded.abspath)
    configured = loaded.config.log.daemon.socket
    if configured:
        path = os.path.normpath(os.path.join(config_dir, os.path.expanduser(configured)))
    elif loaded.store.path:
        path = loaded.store.path.rstrip(os.sep) + "-logd.sock"
    else:
        path = os.path.join(config_dir, "pygate-logd.sock")
    return path


def check_socket_path(path: str) -> None:
    if len(os.fsencode(path)) > _SUN_PATH_MAX:
        raise OSError(
            f"logd socket path {path} is longer than {_SUN_PATH_MAX} bytes "
            "(set log.daemon.socket to a shorter path)"
        )
