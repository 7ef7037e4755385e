"""The admin API's state in SQLite: the entity document, the file's hash, audit rows.

One file (`admin.state`, next to the config file by default). Every change writes
the whole entity document and its audit rows in one transaction, so the state and
the audit trail never disagree. Audit rows wait in `audit_pending` until the log
store has taken them (`pending_audit` / `drop_audit`): a store that is down, or a
restart, loses none.

A connection per call: calls come from the event loop's executor threads, and
sqlite3 connections must not be shared between threads.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sqlite3
from collections.abc import Iterator
from typing import Any

import orjson

from pygate.server.admin_api.document import KINDS, Entities

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS entities (section TEXT NOT NULL, position INTEGER NOT NULL,"
    " name TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (section, name))",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS audit_pending (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " row TEXT NOT NULL)",
)
_FILE_HASH = "file_entities_sha256"
_FINGERPRINT_KEY = "secret_fingerprint_key"
_VERSION = "version"


class AdminStateError(ValueError):
    """The state file cannot be read or written (a ValueError: reloads refuse on it)."""


class StaleState(AdminStateError):
    """Another writer changed the state since it was read (the version moved on)."""


class PendingAudit:
    """The audit rows waiting for the log store (table `audit_pending`), the same SQL on
    SQLite and Postgres but for the parameter mark (`PARAM`)."""

    PARAM = "?"

    def _connect(self) -> contextlib.AbstractContextManager[Any]:
        raise NotImplementedError

    def pending_audit(self, limit: int = 1000) -> list[tuple[int, dict[str, Any]]]:
        """Audit rows not yet in the log store, oldest first, with their sequence number."""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT seq, row FROM audit_pending ORDER BY seq LIMIT {self.PARAM}", (limit,)
            ).fetchall()
        return [(seq, orjson.loads(row)) for seq, row in rows]

    def pending_audit_count(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT count(*) FROM audit_pending").fetchone()[0]

    def drop_audit(self, up_to_seq: int) -> None:
        """Forget the audit rows the log store has taken (sequence <= `up_to_seq`)."""
        with self._connect() as db:
            db.execute(f"DELETE FROM audit_pending WHERE seq <= {self.PARAM}", (up_to_seq,))


class AdminStateDB(PendingAudit):
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            with self._connect() as db:
                for statement in _SCHEMA:
                    db.execute(statement)
            os.chmod(path, 0o600)  # it holds every consumer key and password
        except (OSError, sqlite3.Error) as exc:
            raise AdminStateError(f"admin state {path}: {exc}") from exc

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        """A connection in one transaction: committed on success, rolled back on error."""
        try:
            db = sqlite3.connect(self.path, timeout=30)
        except sqlite3.Error as exc:
            raise AdminStateError(f"admin state {self.path}: {exc}") from exc
        try:
            with db:
                yield db
        except sqlite3.Error as exc:
            raise AdminStateError(f"admin state {self.path}: {exc}") from exc
        finally:
            db.close()

    def is_seeded(self) -> bool:
        return self.file_hash() is not None

    def file_hash(self) -> str | None:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_FILE_HASH,)).fetchone()
        return row[0] if row else None

    def fingerprint_key(self) -> bytes:
        """The key of secret fingerprints (pygate/server/admin_api/secrets.py), made at first use.

        The state file holds the secrets themselves, so it is made readable by its
        owner only."""
        with self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)",
                (_FINGERPRINT_KEY, secrets.token_hex(32)),
            )
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_FINGERPRINT_KEY,)).fetchone()
        return bytes.fromhex(row[0])

    def status(self) -> dict[str, Any]:
        """What `pygate status` says about the state backend."""
        return {"state_backend": "sqlite", "state_connected": True, "state_version": self.version()}

    def version(self) -> int:
        with self._connect() as db:
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
        return int(row[0]) if row else 0

    def entities(self) -> Entities:
        return self.entities_versioned()[0]

    def entities_versioned(self) -> tuple[Entities, int]:
        out: Entities = {section: [] for section in KINDS}
        with self._connect() as db:
            rows = db.execute("SELECT section, body FROM entities ORDER BY section, position")
            for section, body in rows:
                if section in out:
                    out[section].append(orjson.loads(body))
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
        return out, int(row[0]) if row else 0

    def replace(
        self,
        entities: Entities,
        audit_rows: list[dict[str, Any]],
        file_hash: str | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Store `entities` as the whole document and queue `audit_rows`, atomically.

        With `expected_version`, refuses (StaleState) if another write came first.
        Returns the new version."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT value FROM meta WHERE key = ?", (_VERSION,)).fetchone()
            version = int(row[0]) if row else 0
            if expected_version is not None and version != expected_version:
                raise StaleState(f"admin state {self.path}: changed by another writer")
            db.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                (_VERSION, str(version + 1)),
            )
            db.execute("DELETE FROM entities")
            db.executemany(
                "INSERT INTO entities (section, position, name, body) VALUES (?, ?, ?, ?)",
                [
                    (section, position, str(item["name"]), orjson.dumps(item).decode())
                    for section in KINDS
                    for position, item in enumerate(entities.get(section, []))
                ],
            )
            if file_hash is not None:
                db.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (_FILE_HASH, file_hash),
                )
            db.executemany(
                "INSERT INTO audit_pending (row) VALUES (?)",
                [(orjson.dumps(row).decode(),) for row in audit_rows],
            )
        return version + 1
