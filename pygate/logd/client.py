"""The gateway's (and the CLI's) side of logd: a LogStore that talks to its socket.

The shipper keeps its spool, backoff and dedup tokens: to it this is one more store
that can be unavailable. A batch is one frame (the core's RowBinary, untouched) and
one reply; logd inserts it before answering, so an OK means the rows are in the
store. Each thread gets its own connection, so an operator query never waits behind
a 100k-row insert.
"""

from __future__ import annotations

import socket
import struct
import threading

import orjson

from pygate.config import LoadedConfig
from pygate.logd import protocol as p
from pygate.logstore.base import (
    REQUESTS_TABLE,
    BatchRejected,
    LogStore,
    LogStoreError,
    StoreUnavailable,
)
from pygate.logstore.sql_policy import StatementRefused

# Long enough for a large insert into a busy store; a timeout is retried safely
# (the batch keeps its dedup token).
_TIMEOUT_S = 120.0


class WrongLogd(LogStoreError):
    """The socket answers, but its logd owns another store: nothing was read."""


class LogdStore(LogStore):
    def __init__(self, loaded: LoadedConfig, *, role: str = "gateway") -> None:
        self.path = p.socket_path(loaded)
        p.check_socket_path(self.path)
        self.description = f"logd {self.path} ({loaded.store.url})"
        self._hello = orjson.dumps({**p.identity(loaded), "role": role})
        self._local = threading.local()
        self._closed = False
        self.peer: dict | None = None  # logd's identity, after the first connect

    # ----- connection ---------------------------------------------------------------
    def _connection(self) -> socket.socket:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            return sock
        if self._closed:
            raise LogStoreError("the store is closed")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(_TIMEOUT_S)
        try:
            sock.connect(self.path)
            p.send_frame(sock, p.HELLO, self._hello)
            reply = p.recv_frame(sock)
        except (OSError, p.ProtocolError) as exc:
            sock.close()
            raise StoreUnavailable(f"logd at {self.path} is not answering: {exc}") from exc
        if reply is None:
            sock.close()
            raise StoreUnavailable(f"logd at {self.path} closed the connection")
        status, payload = reply
        if status == p.WRONG_STORE:
            sock.close()
            raise WrongLogd(payload.decode(errors="replace"))
        if status != p.OK:
            sock.close()
            raise StoreUnavailable(f"logd refused the connection: {payload.decode()}")
        self.peer = orjson.loads(payload)
        self._local.sock = sock
        return sock

    def exchange(self, op: int, payload: bytes) -> tuple[int, bytes]:
        """One request and its reply (status, payload) on this thread's connection.
        Raises StoreUnavailable when logd cannot be reached or the connection broke."""
        sock = self._connection()
        try:
            p.send_frame(sock, op, payload)
            reply = p.recv_frame(sock)
            if reply is None:
                raise ConnectionError("logd closed the connection")
        except (OSError, p.ProtocolError) as exc:
            self._drop()
            raise StoreUnavailable(f"logd at {self.path}: {exc}") from exc
        return reply

    def _call(self, op: int, payload: bytes) -> bytes:
        status, answer = self.exchange(op, payload)
        if status == p.OK:
            return answer
        message = answer.decode(errors="replace")
        if status == p.REJECTED:
            raise BatchRejected(message)
        if status == p.UNAVAILABLE:
            raise StoreUnavailable(message)
        if status == p.REFUSED:
            raise StatementRefused(message)
        raise LogStoreError(message)

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()

    # ----- LogStore -----------------------------------------------------------------
    def migrate(self) -> list[str]:
        return []  # logd migrates the store it owns when it starts

    def insert_row_binary(self, data: bytes, dedup_token: str, table: str = REQUESTS_TABLE) -> None:
        self._call(p.INSERT, p.pack_strings(table, dedup_token) + data)

    def insert_bench_run(self, report: dict) -> None:
        self._call(p.BENCH_RUN, orjson.dumps(report))

    def set_retention(self, days: int) -> bool:
        return self._call(p.RETENTION, struct.pack("<I", days)) == b"1"

    def query(self, sql: str, fmt: str) -> bytes:
        return self._call(p.QUERY, p.pack_strings(fmt) + sql.encode())

    def ping(self) -> bool:
        """True when logd answers now (for readiness: "store reachable")."""
        try:
            self._call(p.PING, b"")
        except LogStoreError:
            return False
        return True

    def close(self) -> None:
        self._closed = True
        self._drop()


def store_reachable_or_spooling(store: LogStore, spool_rows: int, spool_room: bool) -> bool:
    """For readiness (/readyz): the store answers, or batches still have spool room.

    `store` is the gateway's store (a LogdStore when log.daemon.enabled; any other store
    is taken as reachable, its shipper reports failures itself). `spool_rows` and
    `spool_room` come from the shipper (log_spool_rows, spool below spool_max_bytes)."""
    if isinstance(store, LogdStore) and not store.ping():
        return spool_room
    return spool_room or spool_rows == 0
