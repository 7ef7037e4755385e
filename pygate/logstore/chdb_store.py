"""chDB backend: an embedded ClickHouse working on a local data directory.

chDB lets only one process open a data directory, so the gateway process owns it;
other processes (`pygate logs query`) go through the admin listener while it runs.
Inside the process we keep two sessions on the same directory: one that writes,
and a read-only one for operator queries. The reader runs with readonly=1 (no
settings changes, no table functions that reach files or the network) and every
statement it gets passes the statement check first (sql_guard.py), because chDB
still runs `file()` the function and `INTO OUTFILE` under readonly=1.

Inserts go through a staging file read with the `file()` table function, not
through chDB's streaming inserter: in chDB 4.4 the streaming inserter reports
success when the table refuses the block (a violated constraint, too many parts),
and the rows are silently lost. A plain INSERT ... SELECT reports every error and
costs the same (one memcpy into the page cache).

Rows of pygate.requests arrive as RowBinary (the format batches keep, because it can
be split at any row) and are staged as one Native block, re-encoded by the core:
chDB inserts Native for about two thirds of the CPU of RowBinary, and this CPU is
taken from the proxy's own core (benchmarks/RESULTS.md, "call log cost").
"""

from __future__ import annotations

import os
import threading

from pygate.logstore.base import (
    REQUESTS_TABLE,
    BatchRejected,
    LogStoreError,
    StoreUnavailable,
)
from pygate.logstore.failures import first_line, is_row_data_error
from pygate.logstore.sql_guard import SqlGuard
from pygate.logstore.sql_store import SqlLogStore, sql_string

# Inside the data directory: chDB's lock already makes it this process's alone.
_STAGING_FILE = "pygate-insert.rowbinary"
# The reader: read-only data (mode=ro) and readonly=1, which chDB enforces itself.
READER_OPTIONS = "mode=ro&readonly=1"


def stage_insert_data(staging_path: str, data: bytes | memoryview, fmt: str) -> str:
    """Write `data` to `staging_path`; returns the SELECT that reads it for an INSERT.

    Shared by the log sink and `pygate logs serve`, for the reason in the module
    docstring: chDB's streaming inserter can report success for refused rows.
    Raises OSError if the file cannot be written.
    """
    with open(staging_path, "wb") as staging:
        staging.write(data)
    return f"SELECT * FROM file({sql_string(staging_path)}, {sql_string(fmt)})"


def _as_native(rows: bytes) -> bytes:
    from pygate import _core

    try:
        return _core.requests_row_binary_to_native(rows)
    except ValueError as exc:
        # Same outcome as the store refusing a malformed row: the batch gets split.
        raise BatchRejected(f"malformed RowBinary batch: {exc}") from exc


class ChdbStore(SqlLogStore):
    def __init__(self, path: str, *, retention_days: int = 30, read_only: bool = False) -> None:
        try:
            from chdb import session as chdb_session
        except ImportError as exc:  # pragma: no cover - chdb is a hard dependency
            raise LogStoreError(f"chdb is not installed: {exc}") from exc
        self.path = path
        self.description = f"chdb://{path}"
        self.retention_days = retention_days
        self.read_only = read_only
        self._writer = None
        self._reader = None
        self._staging = os.path.join(path, _STAGING_FILE)
        self._insert_lock = threading.Lock()
        self._guard = SqlGuard(self._reader_rows)
        try:
            if read_only:
                if not os.path.isdir(path):
                    raise LogStoreError(f"no log store at {path} (the gateway has not run yet?)")
            else:
                os.makedirs(path, exist_ok=True)
                self._writer = chdb_session.Session(path)
            self._reader = chdb_session.Session(f"{path}?{READER_OPTIONS}")
        except LogStoreError:
            raise
        except Exception as exc:
            self._close_sessions()
            raise LogStoreError(
                f"cannot open chDB store at {path}: {first_line(exc)} "
                "(chDB allows one process per data directory: is a gateway using it?)"
            ) from exc

    def _execute(self, sql: str) -> None:
        self._require_writer().query(sql)

    def _read_text(self, sql: str) -> str:
        return self._require_writer().query(sql, "TSVRaw").bytes().decode()

    def insert_row_binary(self, data: bytes, dedup_token: str, table: str = REQUESTS_TABLE) -> None:
        writer = self._require_writer()
        # One staging file, so one insert at a time (the AI call log ships from a
        # second thread).
        with self._insert_lock:
            fmt = "RowBinary"
            if table == REQUESTS_TABLE:
                data, fmt = _as_native(data), "Native"
            try:
                select = stage_insert_data(self._staging, data, fmt)
            except OSError as exc:
                raise StoreUnavailable(f"cannot stage the insert in {self.path}: {exc}") from exc
            # The table's own structure is used for the file (ClickHouse takes it from
            # the insertion table), so the column list lives in the migrations only.
            sql = (
                f"INSERT INTO {table} "
                f"SETTINGS insert_deduplication_token = {sql_string(dedup_token)} {select}"
            )
            self._insert_staged(writer, sql)

    def _insert_staged(self, writer, sql: str) -> None:
        try:
            writer.query(sql)
        except Exception as exc:
            message = f"insert failed: {first_line(exc)}"
            if is_row_data_error(str(exc)):
                raise BatchRejected(message) from exc
            raise StoreUnavailable(message) from exc

    def query(self, sql: str, fmt: str) -> bytes:
        reader = self._require_reader()
        self._guard.check_read(sql)  # raises StatementRefused: nothing ran
        try:
            return reader.query(sql, fmt).bytes()
        except Exception as exc:
            raise LogStoreError(first_line(exc)) from exc

    def _reader_rows(self, sql: str) -> list[list]:
        import orjson

        return orjson.loads(self._require_reader().query(sql, "JSONCompact").bytes())["data"]

    def _require_reader(self):
        if self._reader is None:
            raise LogStoreError("the store is closed")
        return self._reader

    def close(self) -> None:
        self._close_sessions()

    def _close_sessions(self) -> None:
        for name in ("_reader", "_writer"):
            session = getattr(self, name, None)
            setattr(self, name, None)
            if session is not None:
                session.cleanup()

    def _require_writer(self):
        if self._writer is None:
            raise LogStoreError("the store is closed or was opened read-only")
        return self._writer
