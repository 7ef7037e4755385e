"""chDB backend: an embedded ClickHouse working on a local data directory.

chDB lets only one process open a data directory, so the gateway process owns it;
other processes (`pygate logs query`) go through the admin listener while it runs.
Inside the process we keep two sessions on the same directory: one that writes,
and a read-only one for operator queries, so SQL typed into `logs query` can never
drop or change data.
"""

from __future__ import annotations

import os
import re

from pygate.logstore.base import LogStore, LogStoreError
from pygate.logstore.schema_migrations import bundled_migrations

_REQUESTS_TABLE = "pygate.requests"
_TTL_DAYS = re.compile(r"TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")


class ChdbStore(LogStore):
    def __init__(self, path: str, *, retention_days: int = 30, read_only: bool = False) -> None:
        try:
            from chdb import session as chdb_session
        except ImportError as exc:  # pragma: no cover - chdb is a hard dependency
            raise LogStoreError(f"chdb is not installed: {exc}") from exc
        self.path = path
        self.retention_days = retention_days
        self.read_only = read_only
        self._writer = None
        try:
            if read_only:
                if not os.path.isdir(path):
                    raise LogStoreError(f"no log store at {path} (the gateway has not run yet?)")
            else:
                os.makedirs(path, exist_ok=True)
                self._writer = chdb_session.Session(path)
            self._reader = chdb_session.Session(f"{path}?mode=ro")
        except LogStoreError:
            raise
        except Exception as exc:
            self._close_sessions()
            raise LogStoreError(
                f"cannot open chDB store at {path}: {_first_line(exc)} "
                "(chDB allows one process per data directory: is a gateway using it?)"
            ) from exc

    def migrate(self) -> list[str]:
        writer = self._require_writer()
        try:
            writer.query("CREATE DATABASE IF NOT EXISTS pygate")
            writer.query(
                "CREATE TABLE IF NOT EXISTS pygate.schema_migrations "
                "(version String, applied_at DateTime DEFAULT now()) "
                "ENGINE = MergeTree ORDER BY version"
            )
            done = set(
                writer.query("SELECT version FROM pygate.schema_migrations", "TSVRaw")
                .bytes()
                .decode()
                .split()
            )
            applied = []
            for migration in bundled_migrations():
                if migration.version in done:
                    continue
                for statement in migration.statements(retention_days=self.retention_days):
                    writer.query(statement)
                writer.query(
                    f"INSERT INTO pygate.schema_migrations (version) VALUES ('{migration.version}')"
                )
                applied.append(migration.version)
            self.set_retention(self.retention_days)
            return applied
        except LogStoreError:
            raise
        except Exception as exc:
            raise LogStoreError(f"migrating {self.path} failed: {_first_line(exc)}") from exc

    def set_retention(self, days: int) -> bool:
        """Apply `days` as the TTL of pygate.requests; True if it changed.

        The table is created with the TTL of its first start; later changes of
        log.retention_days arrive here. Only a real change runs the ALTER, because
        modifying a TTL rewrites existing parts.
        """
        writer = self._require_writer()
        try:
            ddl = writer.query(f"SHOW CREATE TABLE {_REQUESTS_TABLE}", "TSVRaw").bytes().decode()
            match = _TTL_DAYS.search(ddl)
            if match is not None and int(match.group(1)) == days:
                self.retention_days = days
                return False
            ttl = f"toDateTime(ts) + INTERVAL {int(days)} DAY"
            writer.query(f"ALTER TABLE {_REQUESTS_TABLE} MODIFY TTL {ttl}")
            self.retention_days = days
            return True
        except Exception as exc:
            raise LogStoreError(f"setting retention failed: {_first_line(exc)}") from exc

    def insert_json_each_row(self, data: bytes) -> int:
        writer = self._require_writer()
        try:
            # A streaming insert takes the core's bytes as they are: no decoding,
            # no per-record work in Python.
            inserter = writer.send_insert(f"INSERT INTO {_REQUESTS_TABLE}", "JSONEachRow")
            try:
                inserter.append(data)
                result = inserter.finish()
            except BaseException:
                inserter.cancel()
                raise
            return int(result.rows_written)
        except Exception as exc:
            raise LogStoreError(f"insert failed: {_first_line(exc)}") from exc

    def query(self, sql: str, fmt: str) -> bytes:
        if self._reader is None:
            raise LogStoreError("the store is closed")
        try:
            return self._reader.query(sql, fmt).bytes()
        except Exception as exc:
            raise LogStoreError(_first_line(exc)) from exc

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


def _first_line(exc: BaseException) -> str:
    # ClickHouse errors carry a stack trace after the first line; operators need the
    # first line only.
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
