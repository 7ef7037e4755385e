"""ClickHouse server backend, through clickhouse-connect over HTTP(S).

The server may be down when the gateway starts or at any time after: nothing here
connects eagerly. The first successful insert (or `migrate`) connects and brings
the schema up to date; until then every write raises StoreUnavailable and the
shipper spools. Two clients: the shipper thread writes, admin queries read, and
neither waits for the other (clickhouse-connect clients are not shared safely
across threads with a session).
"""

from __future__ import annotations

import threading
from typing import Any

from pygate.logstore.base import (
    REQUESTS_TABLE,
    BatchRejected,
    LogStoreError,
    StoreUnavailable,
)
from pygate.logstore.failures import first_line, is_row_data_error
from pygate.logstore.sql_guard import SqlGuard
from pygate.logstore.sql_store import SqlLogStore
from pygate.logstore.url import ServerAddress, StoreLocation

_CONNECT_TIMEOUT_S = 5
# Long enough for a 10k-row insert into a busy server; a timeout is safe to retry
# because every insert carries its deduplication token.
_SEND_RECEIVE_TIMEOUT_S = 60
# log.cluster: inserts into the Distributed tables return once every shard has its rows
# (one replica each), so a failure reaches the shipper, which spools and replays with
# the same token; the rollup views' blocks are deduplicated on that replay as well.
# ON CLUSTER DDL waits for the nodes a little less than a request may take, and a node
# that is down does not fail the migration: its DDL waits in the cluster's queue
# (Keeper) and runs when it is back. README: "ClickHouse cluster".
CLUSTER_SETTINGS = {
    "distributed_foreground_insert": 1,  # alias: insert_distributed_sync
    "deduplicate_blocks_in_dependent_materialized_views": 1,
    "distributed_ddl_task_timeout": _SEND_RECEIVE_TIMEOUT_S - 10,
    "distributed_ddl_output_mode": "null_status_on_timeout",
}


class ClickHouseStore(SqlLogStore):
    def __init__(
        self, location: StoreLocation, *, retention_days: int = 30, read_only: bool = False
    ) -> None:
        assert location.server is not None
        self.server: ServerAddress = location.server
        self.description = location.url
        self.retention_days = retention_days
        self.read_only = read_only
        self.cluster = location.cluster
        if self.cluster is not None:
            self.description = f"{location.url} (cluster {self.cluster.name})"
        self._settings: dict[str, Any] = dict(CLUSTER_SETTINGS) if self.cluster else {}
        self._writer: Any = None
        self._reader: Any = None
        self._reader_lock = threading.Lock()
        self._schema_ready = False
        self._closed = False
        # The server parses each query for the same statement check as chDB's; its own
        # grants are the operator's to set (README: "ClickHouse server users").
        self._guard = SqlGuard(self._reader_rows)

    # ----- SqlLogStore primitives (writer side, shipper thread) ---------------------
    def _execute(self, sql: str) -> None:
        self._writer_client().command(sql, settings=self._settings)

    def _read_text(self, sql: str) -> str:
        result = self._writer_client().command(sql, settings=self._settings)
        if isinstance(result, list | tuple):
            return "\n".join(str(value) for value in result)
        return str(result)

    def _failure(self, what: str, exc: Exception) -> LogStoreError:
        # Migrations and retention only fail for reasons outside the data.
        return StoreUnavailable(f"{what} failed: {first_line(exc)}")

    def migrate(self) -> list[str]:
        if self.read_only:
            raise LogStoreError("the store was opened read-only")
        applied = super().migrate()
        self._schema_ready = True
        return applied

    def insert_row_binary(self, data: bytes, dedup_token: str, table: str = REQUESTS_TABLE) -> None:
        if not self._schema_ready:
            self.migrate()
        client = self._writer_client()
        settings = {
            **self._settings,
            "insert_deduplication_token": dedup_token,
            "insert_deduplicate": 1,
        }
        try:
            client.raw_insert(table, None, insert_block=data, settings=settings, fmt="RowBinary")
        except Exception as exc:
            message = f"insert into {self.description} failed: {first_line(exc)}"
            if is_row_data_error(str(exc)):
                raise BatchRejected(message) from exc
            # Drop pooled connections: the next attempt starts from a fresh socket.
            self._discard_writer()
            raise StoreUnavailable(message) from exc

    # ----- reads (admin listener threads) --------------------------------------------
    def query(self, sql: str, fmt: str) -> bytes:
        self._guard.check_read(sql)  # raises StatementRefused: nothing ran
        return self._read(sql, fmt)

    def _reader_rows(self, sql: str) -> list[list]:
        import orjson

        return orjson.loads(self._read(sql, "JSONCompact", wrap=False))["data"]

    def _read(self, sql: str, fmt: str, wrap: bool = True) -> bytes:
        with self._reader_lock:
            try:
                if self._reader is None:
                    self._reader = self._connect()
                settings = _read_only_settings(self._reader)
                return bytes(self._reader.raw_query(sql, fmt=fmt, settings=settings))
            except LogStoreError:
                raise
            except Exception as exc:
                if not wrap:
                    raise
                raise LogStoreError(first_line(exc)) from exc

    def close(self) -> None:
        self._closed = True
        self._discard_writer()
        with self._reader_lock:
            if self._reader is not None:
                self._reader.close()
                self._reader = None

    # ----- connections ---------------------------------------------------------------
    def _writer_client(self) -> Any:
        if self._closed:
            raise LogStoreError("the store is closed")
        if self._writer is None:
            self._writer = self._connect()
        return self._writer

    def _discard_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - closing a broken client must not mask the cause
                pass

    def _connect(self) -> Any:
        import clickhouse_connect

        s = self.server
        options: dict[str, Any] = {
            "host": s.host,
            "port": s.port,
            "username": s.user,
            "password": s.password,
            "secure": s.secure,
            "verify": s.verify,
            "compress": False if s.compress == "none" else s.compress,
            "connect_timeout": _CONNECT_TIMEOUT_S,
            "send_receive_timeout": _SEND_RECEIVE_TIMEOUT_S,
            # No server session: sessions serialize requests and expire on the server.
            "autogenerate_session_id": False,
            "client_name": "pygate",
        }
        if s.ca_cert:
            options["ca_cert"] = s.ca_cert
        try:
            return clickhouse_connect.get_client(**options)
        except Exception as exc:
            raise StoreUnavailable(
                f"cannot connect to {self.description}: {first_line(exc)}"
            ) from exc


def _read_only_settings(client: Any) -> dict[str, Any]:
    """readonly=1 for each read, unless the server already runs this user read-only
    (a readonly profile, or `pygate logs serve`), where asking for it is an error."""
    current = getattr(client, "server_settings", {}).get("readonly")
    if current is not None and (current.readonly or str(current.value) in ("1", "2")):
        return {}
    return {"readonly": 1}
