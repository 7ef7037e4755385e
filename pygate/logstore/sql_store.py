"""What chDB and ClickHouse-server stores share: migrations and retention in SQL.

A backend supplies `_execute` (run a statement, raise on failure) and `_read_text`
(run a query, return TSVRaw text); both raise the backend's own exceptions, which are
mapped to LogStoreError here.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from typing import TYPE_CHECKING

import orjson

from pygate.logstore.base import REQUESTS_TABLE, LogStore, LogStoreError
from pygate.logstore.failures import first_line
from pygate.logstore.schema_migrations import apply_migrations

if TYPE_CHECKING:
    from pygate.logstore.cluster_ddl import ClusterSchema

BENCH_RUNS_TABLE = "pygate.bench_runs"
# Tables with one row per call, whose TTL follows log.retention_days (their migrations
# create them with `TTL ... INTERVAL {retention_days} DAY`).
RETAINED_TABLES = (REQUESTS_TABLE, "pygate.ai_calls")
_TTL_DAYS = re.compile(r"TTL toDateTime\(ts\) \+ toIntervalDay\((\d+)\)")


class SqlLogStore(LogStore):
    retention_days: int
    # log.cluster: migrations and retention run ON CLUSTER on the local tables
    # (cluster_ddl.py); the names read and written stay the Distributed ones.
    cluster: ClusterSchema | None = None

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
                self._execute,
                self._read_text,
                retention_days=self.retention_days,
                cluster=self.cluster,
            )
        except LogStoreError:
            raise
        except Exception as exc:
            raise self._failure(f"migrating {self.description}", exc) from exc
        self.set_retention(self.retention_days)
        return applied

    def insert_bench_run(self, report: dict) -> None:
        row = orjson.dumps(bench_run_row(report)).decode()
        try:
            self._execute(f"INSERT INTO {BENCH_RUNS_TABLE} FORMAT JSONEachRow {row}")
        except LogStoreError:
            raise
        except Exception as exc:
            raise self._failure("saving the bench run", exc) from exc

    def set_retention(self, days: int) -> bool:
        """Apply `days` as the TTL of the per-call tables; True if any changed.

        The tables are created with the TTL of their first start; later changes of
        log.retention_days arrive here. Only a real change runs the ALTER, because
        modifying a TTL rewrites existing parts. On a cluster the TTL is the local
        tables' (a Distributed table has none), changed ON CLUSTER.
        """
        changed = False
        try:
            for table in RETAINED_TABLES:
                on_cluster = ""
                if self.cluster is not None:
                    table, on_cluster = self.cluster.local_table(table), self.cluster.on()
                ddl = self._read_text(f"SHOW CREATE TABLE {table}")
                match = _TTL_DAYS.search(ddl)
                if match is not None and int(match.group(1)) == days:
                    continue
                ttl = f"toDateTime(ts) + INTERVAL {int(days)} DAY"
                self._execute(f"ALTER TABLE {table}{on_cluster} MODIFY TTL {ttl}")
                changed = True
            self.retention_days = days
            return changed
        except LogStoreError:
            raise
        except Exception as exc:
            raise self._failure("setting retention", exc) from exc


def bench_run_row(report: dict) -> dict:
    """A `pygate bench` JSON report as a pygate.bench_runs row."""
    import time

    latency = report.get("latency_ms", {})
    statuses = report.get("statuses", {})
    return {
        "ts": round(time.time(), 3),
        "url": report["url"],
        "mode": report["mode"],
        "connections": report["connections"],
        "threads": report["threads"],
        "target_rate": report.get("target_rate"),
        "duration_s": report["duration_s"],
        "requests": report["requests"],
        "requests_per_s": report["requests_per_s"],
        "errors": sum(report.get("errors", {}).values()),
        "non_2xx": sum(n for code, n in statuses.items() if not 200 <= int(code) < 300),
        "p50_ms": latency.get("p50", 0.0),
        "p90_ms": latency.get("p90", 0.0),
        "p99_ms": latency.get("p99", 0.0),
        "p999_ms": latency.get("p99.9", 0.0),
        "max_ms": latency.get("max", 0.0),
        "report": orjson.dumps(report).decode(),
    }


def sql_string(value: str) -> str:
    """A ClickHouse string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
