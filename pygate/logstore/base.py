"""The log store interface: where call records go and where `logs query` reads them."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


class LogStoreError(Exception):
    """A store operation failed; the message is the backend's, meant for the operator."""


@dataclass(frozen=True, slots=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]


class LogStore(ABC):
    @abstractmethod
    def migrate(self) -> list[str]:
        """Create or upgrade the schema; returns the migration versions applied now."""

    @abstractmethod
    def insert_json_each_row(self, data: bytes) -> int:
        """Insert JSONEachRow records as they come from the core; returns rows written."""

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
