"""What chDB and ClickHouse-server stores share: migrations and retention in SQL.

A backend supplies `_execute` (run a statement, raise on failure) and `_read_text`
(run a query, return TSVRaw text); both raise the backend's own exceptions, which are
mapped to LogStoreError here.
"""

from __future__ import annotations

import re
from abc import abstractmethod

from pygate.logstore.base import REQUESTS_TABLE, LogStore, LogStoreError
from pygate.logstore.failures import first_line
from pygate.logstore.schema_migrations import apply_migrations

_TTL_DAYS = re.compile(r"TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")


class SqlLogStore(LogStore):
    retention_days: int

    @abstractmethod
    def _execute(self, sql: str) -> None: ...

    @abstractmethod
    def _read_text(self, sql: str) -> str: ...

    def _failure(self, what: str, exc: Exception) -> LogStoreError:
        """The error to raise when `what` failed; backends refine the class."""
        return LogStoreError(f"{what} failed: {first_line(exc)}")

    def migrate(self) -> list[str]:
        try:
            applied = apply_migrations(
                self._execute, self._read_text, retention_days=self.retention_days
            )
        except LogStoreError:
            raise
        except Exception as exc:
            raise self._failure(f"migrating {self.description}", exc) from exc
        self.set_retention(self.retention_days)
        return applied

    def set_retention(self, days: int) -> bool:
        """Apply `days` as the TTL of pygate.requests; True if it changed.

        The table is created with the TTL of its first start; later changes of
        log.retention_days arrive here. Only a real change runs the ALTER, because
        modifying a TTL rewrites existing parts.
        """
        try:
            ddl = self._read_text(f"SHOW CREATE TABLE {REQUESTS_TABLE}")
            match = _TTL_DAYS.search(ddl)
            if match is not None and int(match.group(1)) == days:
                self.retention_days = days
                return False
            ttl = f"toDateTime(ts) + INTERVAL {int(days)} DAY"
            self._execute(f"ALTER TABLE {REQUESTS_TABLE} MODIFY TTL {ttl}")
            self.retention_days = days
            return True
        except LogStoreError:
            raise
        except Exception as exc:
            raise self._failure("setting retention", exc) from exc


def sql_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
