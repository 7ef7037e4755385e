"""Log stores for call records. Backends import their client library lazily."""

from __future__ import annotations

from pygate.logstore.base import (
    BatchRejected,
    LogStore,
    LogStoreError,
    QueryResult,
    StoreUnavailable,
)
from pygate.logstore.url import SUPPORTED_SCHEMES, StoreLocation, parse_store_url


def open_store(
    location: StoreLocation | str,
    *,
    base_dir: str = ".",
    retention_days: int = 30,
    read_only: bool = False,
) -> LogStore:
    """Open the store at `location` (a StoreLocation or a URL such as chdb://./data)."""
    if isinstance(location, str):
        location = parse_store_url(location, base_dir)
    if location.scheme == "chdb":
        from pygate.logstore.chdb_store import ChdbStore

        if location.cluster is not None:  # the config refuses it; say so if called directly
            raise LogStoreError("log.cluster needs a ClickHouse server store, not chdb://")

        return ChdbStore(location.path, retention_days=retention_days, read_only=read_only)
    if location.is_server:
        from pygate.logstore.clickhouse_store import ClickHouseStore

        return ClickHouseStore(location, retention_days=retention_days, read_only=read_only)
    raise LogStoreError(f"unsupported log store {location.scheme}://")


__all__ = [
    "SUPPORTED_SCHEMES",
    "BatchRejected",
    "LogStore",
    "LogStoreError",
    "QueryResult",
    "StoreLocation",
    "StoreUnavailable",
    "open_store",
    "parse_store_url",
]
