"""Audit rows for entity changes, and their trip into the log store (pygate.audit_log).

A change is recorded as one row per entity it created, updated or deleted, with the
entity as JSON before and after. Secrets (keys, passwords, jwt secrets) are written as
their keyed fingerprints ("sha256:<12 hex>", pygate/server/admin_api/secrets.py): enough to
tell them apart, useless to a reader.

Rows are first written to the admin state (SQLite) in the same transaction as the
change itself; `AuditShipper` moves them to the log store as RowBinary with a
deduplication token, and forgets them only once the store has taken them.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from pygate.logstore import LogStore, LogStoreError
from pygate.logstore.tables import AUDIT_LOG
from pygate.server.admin_api.document import KINDS, Entities
from pygate.server.admin_api.statedb import AdminStateDB, AdminStateError

log = logging.getLogger("pygate")

AUDIT_TABLE = AUDIT_LOG.name
_RETRY_S = 1.0
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Who:
    actor: str  # admin token name, "anonymous", or file:<path>
    client: str  # client address; "" for file imports
    request: str  # e.g. "PUT /routes/api"


# (section, entity) -> the entity as it may be shown: its secrets as fingerprints.
Redact = Callable[[str, dict[str, Any]], dict[str, Any]]


def change_rows(
    before: Entities, after: Entities, who: Who, redact: Redact
) -> list[dict[str, Any]]:
    """One audit row per entity that differs between the two documents."""
    ts_ms = int(time.time() * 1000)
    change_id = uuid.uuid4().hex
    rows = []
    for section, (kind, _) in KINDS.items():
        old = {item["name"]: item for item in before.get(section, [])}
        new = {item["name"]: item for item in after.get(section, [])}
        for name in [*old, *(n for n in new if n not in old)]:
            was, now = old.get(name), new.get(name)
            if was == now:
                continue
            action = "create" if was is None else "delete" if now is None else "update"
            rows.append({
                "ts": ts_ms, "change_id": change_id, "actor": who.actor,
                "client": who.client, "action": action, "entity_kind": kind,
                "entity_name": str(name), "before": _entity_json(section, was, redact),
                "after": _entity_json(section, now, redact), "request": who.request,
            })  # fmt: skip
    return rows


def _entity_json(section: str, entity: dict[str, Any] | None, redact: Redact) -> str:
    if entity is None:
        return ""
    return orjson.dumps(redact(section, entity)).decode()


def encode_rows(rows: list[tuple[int, dict[str, Any]]]) -> bytes:
    """RowBinary for pygate.audit_log; `seq` comes from the admin state's queue."""
    out = bytearray()
    for seq, row in rows:
        AUDIT_LOG.encode({**row, "seq": seq}, out)
    return bytes(out)


class AuditShipper:
    """Moves queued audit rows from the admin state into the log store, in order."""

    def __init__(self, db: AdminStateDB, store: LogStore) -> None:
        self.db = db
        self.store = store
        self._wake = asyncio.Event()
        self._flushing = asyncio.Lock()
        self._last_error: str | None = None

    def notify(self) -> None:
        self._wake.set()

    async def run(self) -> None:
        """Ship now and then: on every notify, and every second while rows wait."""
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), _RETRY_S)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Ship everything queued; False if the store (or the state) failed meanwhile."""
        loop = asyncio.get_running_loop()
        async with self._flushing:
            while True:
                try:
                    batch = await loop.run_in_executor(None, self.db.pending_audit, _BATCH)
                    if not batch:
                        self._recovered()
                        return True
                    data = encode_rows(batch)
                    # Content-derived: a retry after a timeout that did insert is a no-op.
                    token = "audit-" + hashlib.sha256(data).hexdigest()
                    await loop.run_in_executor(
                        None, self.store.insert_row_binary, data, token, AUDIT_TABLE
                    )
                    await loop.run_in_executor(None, self.db.drop_audit, batch[-1][0])
                except (LogStoreError, AdminStateError) as exc:
                    self._failed(str(exc))
                    return False
                except Exception as exc:  # noqa: BLE001 - kept and retried, never dropped
                    log.exception("audit log: shipping failed")
                    self._failed(f"{type(exc).__name__}: {exc}")
                    return False

    def _failed(self, message: str) -> None:
        if message != self._last_error:
            log.warning("audit log: %s; the rows wait in the admin state and are retried", message)
        self._last_error = message

    def _recovered(self) -> None:
        if self._last_error is not None:
            log.info("audit log: shipped the waiting rows")
        self._last_error = None
