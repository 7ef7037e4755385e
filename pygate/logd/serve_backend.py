"""logd's side of `pygate logs serve`: run the statements it forwards on logd's store.

chDB lets one process open a data directory, so while logd owns the store `logs serve`
cannot open it; it forwards each statement here instead (pygate/chserver/wire.py).
The statements run on sessions of their own (chserver's ChdbStatements: a `mode=ro`
reader with readonly=2, and a writer opened only when a writing user sends an
INSERT), never on the sessions the gateways' inserts and `logs query` use, so an
analyst's SET or USE cannot change how batches are inserted. Every statement passes
the same statement check, here, right before it runs, as when `logs serve` owns the
store. One statement at a time (the sessions carry the HTTP sessions' state), beside
the gateways' inserts, which never wait for it.
"""

from __future__ import annotations

import logging
import threading

from pygate.chserver import wire
from pygate.chserver.engine import ChdbStatements, StoreUnavailable
from pygate.chserver.errors import LOGICAL_ERROR, NOT_IMPLEMENTED, ClickHouseError
from pygate.logd import protocol as p
from pygate.logstore.url import StoreLocation

log = logging.getLogger("pygate.logd")


class ServeBackend:
    def __init__(self, location: StoreLocation) -> None:
        self._path = location.path if location.scheme == "chdb" else None
        self._url = location.url
        self._core: ChdbStatements | None = None
        self._lock = threading.Lock()
        self._closed = False

    def handle(self, op: int, payload: bytes) -> tuple[int, bytes]:
        try:
            with self._lock:
                return p.OK, self._run(op, payload)
        except ClickHouseError as exc:
            return p.CH_ERROR, wire.encode_error(exc)
        except wire.WireError as exc:
            return p.FAILED, str(exc).encode()
        except StoreUnavailable as exc:
            return p.UNAVAILABLE, str(exc).encode()
        except Exception as exc:  # a bug must still answer in ClickHouse's terms
            log.exception("logd: a logs serve statement failed")
            error = ClickHouseError(LOGICAL_ERROR, f"{type(exc).__name__}: {exc}")
            return p.CH_ERROR, wire.encode_error(error)

    def _run(self, op: int, payload: bytes) -> bytes:
        core = self._open()
        if op == p.SERVE_OPEN:
            assert core.info is not None
            return wire.encode_info(core.info)
        if op == p.SERVE_CHECK:
            database, settings, writable = wire.decode_check(payload)
            core.check(database, settings, writable and self._writer(core))
            return b""
        statement = wire.decode_statement(payload)
        if statement.writable:
            self._writer(core)
        return wire.encode_outcome(core.run(statement))

    def _open(self) -> ChdbStatements:
        if self._closed:
            raise StoreUnavailable("logd is stopping")
        if self._path is None:
            raise ClickHouseError(
                NOT_IMPLEMENTED,
                f"pygate logs serve serves an embedded chDB store; this logd ships to {self._url}",
            )
        if self._core is None:
            core = ChdbStatements(self._path, writable=False)
            core.open()
            self._core = core
        return self._core

    @staticmethod
    def _writer(core: ChdbStatements) -> bool:
        # The writable session exists only once a writing user sent something.
        core.allow_writes()
        return True

    def close(self) -> None:
        """After the statement in progress (if any); later ones get UNAVAILABLE."""
        with self._lock:
            self._closed = True
            if self._core is not None:
                self._core.close()
                self._core = None
