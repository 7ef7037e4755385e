"""`pygate logd --config X`: own the log store and take batches over a Unix socket.

One thread per connection (gateways, the CLI, the dashboard's queries through the
gateway). An insert is answered after the store took it, so the gateway's shipper
keeps its durability rules unchanged: an error or a dead logd means "unavailable",
and the batch goes to the gateway's spool and is replayed with the same dedup token.
logd itself holds no batch it has not acknowledged, so SIGKILL loses nothing.

The socket is created with mode 0600 in a directory we check, and every peer's uid
(SO_PEERCRED) must be ours: another local user can neither write rows nor read them.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import stat
import struct
import sys
import threading

import orjson

from pygate.config import ConfigError, LoadedConfig, load_config
from pygate.logd import protocol as p
from pygate.logd.serve_backend import ServeBackend
from pygate.logstore import LogStore, LogStoreError, open_store
from pygate.logstore.base import REQUESTS_TABLE, BatchRejected, StoreUnavailable
from pygate.logstore.sql_policy import StatementRefused
from pygate.logstore.tables import PYTHON_TABLES

log = logging.getLogger("pygate.logd")
_PEERCRED = struct.Struct("3i")


def peer_uid(conn: socket.socket) -> int:
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEERCRED.size)
    return _PEERCRED.unpack(raw)[1]


def bind_socket(path: str) -> socket.socket:
    """Listen on `path` (mode 0600). Refuses if another logd already answers there."""
    p.check_socket_path(path)
    directory = os.path.dirname(path) or "."
    os.makedirs(directory, mode=0o700, exist_ok=True)
    info = os.stat(directory)
    if (
        info.st_uid != os.getuid()
        or info.st_mode & stat.S_IWOTH
        and not info.st_mode & stat.S_ISVTX
    ):
        raise OSError(f"logd socket directory {directory} is writable by other users")
    if os.path.lexists(path):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # left by a logd that died
        else:
            raise OSError(f"another logd already listens on {path}")
        finally:
            probe.close()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)
    try:
        listener.bind(path)
    finally:
        os.umask(old_umask)
    os.chmod(path, 0o600)
    listener.listen(64)
    return listener


class LogDaemon:
    def __init__(self, loaded: LoadedConfig, store: LogStore, listener: socket.socket) -> None:
        self.loaded = loaded
        self.store = store
        self.listener = listener
        self.identity = p.identity(loaded)
        self.serve = ServeBackend(loaded.store)  # `logs serve`'s statements
        self.stopping = threading.Event()
        self._busy = threading.Lock()  # held around every store call, for a clean stop
        self.rows_inserted = 0
        self.batches_inserted = 0

    def serve_forever(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except OSError:
                if self.stopping.is_set():
                    return
                raise
            if peer_uid(conn) != os.getuid():
                log.warning("logd: refused a connection from another user")
                conn.close()
                continue
            threading.Thread(target=self._serve_connection, args=(conn,), daemon=True).start()

    def stop(self) -> None:
        self.stopping.set()
        try:
            self.listener.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.listener.close()
        with self._busy:  # the insert in progress finishes and is acknowledged
            pass
        self.serve.close()

    def _serve_connection(self, conn: socket.socket) -> None:
        with conn:
            try:
                if not self._hello(conn):
                    return
                while not self.stopping.is_set():
                    frame = p.recv_frame(conn)
                    if frame is None:
                        return
                    status, answer = self._handle(*frame)
                    p.send_frame(conn, status, answer)
            except (OSError, p.ProtocolError) as exc:
                log.debug("logd connection ended: %s", exc)

    def _hello(self, conn: socket.socket) -> bool:
        frame = p.recv_frame(conn)
        if frame is None or frame[0] != p.HELLO:
            return False
        try:
            theirs = orjson.loads(frame[1])
        except orjson.JSONDecodeError:
            return False
        if theirs.get("store_fingerprint") != self.identity["store_fingerprint"]:
            message = (
                f"this logd serves config {self.identity['config']} with store "
                f"{self.identity['store']}; you asked for config {theirs.get('config')} "
                f"with store {theirs.get('store')}"
            )
            p.send_frame(conn, p.WRONG_STORE, message.encode())
            return False
        p.send_frame(conn, p.OK, orjson.dumps(self.identity))
        return True

    def _handle(self, op: int, payload: bytes) -> tuple[int, bytes]:
        if op in _SERVE_OPS:
            return self.serve.handle(op, payload)
        try:
            with self._busy if op in (p.INSERT, p.BENCH_RUN, p.RETENTION) else _nothing:
                return p.OK, self._run(op, payload)
        except BatchRejected as exc:
            return p.REJECTED, str(exc).encode()
        except StoreUnavailable as exc:
            return p.UNAVAILABLE, str(exc).encode()
        except StatementRefused as exc:
            return p.REFUSED, str(exc).encode()
        except (LogStoreError, p.ProtocolError, ValueError) as exc:
            return p.FAILED, str(exc).encode()

    def _run(self, op: int, payload: bytes) -> bytes:
        if self.stopping.is_set() and op == p.INSERT:
            raise StoreUnavailable("logd is stopping")
        if op == p.INSERT:
            (table, token), data = p.unpack_strings(payload, 2)
            if table not in _WRITABLE_TABLES:
                raise p.ProtocolError(f"logd does not insert into {table}")
            self.store.insert_row_binary(bytes(data), token, table)
            self.batches_inserted += 1
            return b""
        if op == p.QUERY:
            (fmt,), sql = p.unpack_strings(payload, 1)
            return self.store.query(bytes(sql).decode(), fmt)
        if op == p.BENCH_RUN:
            self.store.insert_bench_run(orjson.loads(payload))
            return b""
        if op == p.RETENTION:
            (days,) = struct.unpack("<I", payload)
            return b"1" if self.store.set_retention(days) else b"0"
        if op == p.PING:
            return b""
        raise p.ProtocolError(f"unknown logd request {op}")


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *_exc: object) -> None:
        return None


_nothing = _Nothing()
# What gateways write: the core's call records, and the tables the Python side ships
# (AI calls, the admin API's audit rows). Nothing else: bench runs have their own frame.
_WRITABLE_TABLES = frozenset({REQUESTS_TABLE, *(table.name for table in PYTHON_TABLES)})
_SERVE_OPS = frozenset({p.SERVE_OPEN, p.SERVE_RUN, p.SERVE_CHECK})


# Set by `pygate serve` for the logd it supervises: logd stops (cleanly) when that
# process is gone, even after a SIGKILL, so a restarted serve can start its own.
PARENT_ENV = "PYGATE_LOGD_PARENT"


def _stop_with_parent(parent: int, daemon: LogDaemon) -> None:
    while not daemon.stopping.wait(0.25):
        if os.getppid() != parent:
            log.warning("logd: the gateway that started it is gone; stopping")
            daemon.stop()
            return


def _bind_when_free(path: str, wait_s: float) -> socket.socket:
    """bind_socket, waiting up to `wait_s` for a previous logd (one whose gateway died)
    to finish its last insert and let go of the socket."""
    import time

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return bind_socket(path)
        except OSError as exc:
            if "already listens" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_logd(config_file: str) -> int:
    from pygate.server.serve import setup_logging

    setup_logging()
    try:
        loaded = load_config(config_file, import_plugins=False)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return 2
    cpus = loaded.config.log.daemon.cpus
    if cpus:
        try:
            os.sched_setaffinity(0, cpus)
        except OSError as exc:
            log.error("logd: cannot pin to CPUs %s: %s", cpus, exc.strerror or exc)
            return 1
    try:
        store = open_store(loaded.store, retention_days=loaded.config.log.retention_days)
    except LogStoreError as exc:
        log.error("logd: log store: %s", exc)
        return 1
    try:
        applied = store.migrate()
        if applied:
            log.info("logd: log store %s: applied migrations %s", store.description, applied)
    except StoreUnavailable as exc:
        if not loaded.store.is_server:
            store.close()
            log.error("logd: log store: %s", exc)
            return 1
        log.warning(
            "logd: log store %s: %s; gateways spool until it answers", store.description, exc
        )
    path = p.socket_path(loaded)
    parent = int(os.environ.get(PARENT_ENV, "0") or 0)
    try:
        listener = _bind_when_free(path, wait_s=10.0 if parent else 0.0)
    except OSError as exc:
        log.error("logd: cannot listen on %s: %s", path, exc.strerror or exc)
        store.close()
        return 1
    daemon = LogDaemon(loaded, store, listener)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=daemon.stop).start())
    signal.signal(signal.SIGINT, lambda *_: threading.Thread(target=daemon.stop).start())
    if parent:
        threading.Thread(target=_stop_with_parent, args=(parent, daemon), daemon=True).start()
    log.info("logd: serving %s on %s (pid %d)", store.description, path, os.getpid())
    try:
        daemon.serve_forever()
    finally:
        daemon.stop()
        try:
            os.unlink(path)
        except OSError:
            pass
        store.close()
    log.info("logd: stopped (%d batches inserted)", daemon.batches_inserted)
    return 0
