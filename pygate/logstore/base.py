"""The log store interface: where call records go and where `logs query` reads them.

Writes come from the shipper thread as RowBinary batches straight from the core.
Failures are split in two, because the shipper reacts differently:

- `StoreUnavailable`: the store cannot take the batch now (down, timeout, overloaded,
  disk full, schema not reachable). The data is fine: spool it and retry later.
- `BatchRejected`: the store is up and refused the data itself (a row that does not
  parse or violates a constraint). Retrying the same bytes would fail forever: bisect
  the batch and quarantine the bad rows.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

REQUESTS_TABLE = "pygate.requests"


class LogStoreError(Exception):
    """A store operation failed; the message is the backend's, meant for the operator."""


class StoreUnavailable(LogStoreError):
    """The store cannot take writes at the moment; the same batch may succeed later."""


class BatchRejected(LogStoreError):
    """The store refused the batch's data: at least one row is invalid."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


class LogStore(ABC):
    # Where the store is, for messages; never includes a password.
    description: str = ""

    @abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migration versions applied now."""

    @abstractmethod
    def insert_row_binary(self, data: bytes, dedup_token: str, table: str = REQUESTS_TABLE) -> None:
        """Insert RowBinary rows (`table`'s column order) as one idempotent insert.

        Inserting the same `dedup_token` again is a no-op in the store, so a batch whose
        first attempt timed out after all can be retried without duplicating rows.
        Raises StoreUnavailable or BatchRejected (see the module docstring).
        """

    @abstractmethod
    def insert_bench_run(self, report: dict) -> None:
        """Keep one `pygate bench` report in pygate.bench_runs."""

    @abstractmethod
    def set_retention(self, days: int) -> bool:
        """Keep call records for `days` days; True if that changed the store."""

    @abstractmethod
    def query(self, sql: str, fmt: str) -> bytes:
        """Run a read-only query and return the result in ClickHouse format `fmt`."""

    def query_rows(self, sql: str) -> QueryResult:
        """Run a read-only query and return its columns and rows."""
        import orjson

        result = orjson.loads(self.query(sql, "JSONCompact"))
        return QueryResult(
            columns=[column["name"] for column in result.get("meta", [])],
            rows=result.get("data", []),
        )

    @abstractmethod
    def close(self) -> None:
        """Release the store; further calls fail."""

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
