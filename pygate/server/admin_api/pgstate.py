"""The admin API's state in Postgres (`admin.state: postgresql://...`), shared by every node.

The same interface as statedb.AdminStateDB (the admin API does not know which one it
has). Every write is one transaction that locks the single `state_version` row, checks
the version the change was based on (a write from another node in between is a
StaleState: the service re-reads and re-applies), stores the whole document, bumps the
version and sends it with NOTIFY pygate_state; state_watch.py listens on every node.

The last document read or written is cached on disk (mode 0600: it holds consumer keys
and passwords) so that a node that starts, or runs, while Postgres is down keeps
serving it. Writes need Postgres: they fail with AdminStateError (a 503) then.

Synchronous psycopg 3 calls, one short connection per call: they run on the event
loop's executor threads, like the SQLite ones; the listener (state_watch.py) is async.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import orjson

from pygate.config.state_url import redacted, scrub
from pygate.server.admin_api.document import KINDS, Entities
from pygate.server.admin_api.statedb import AdminStateError, PendingAudit, StaleState

log = logging.getLogger("pygate")

CHANNEL = "pygate_state"
CONNECT_TIMEOUT_S = 2
_FILE_HASH = "file_entities_sha256"
_FINGERPRINT_KEY = "secret_fingerprint_key"
_MIGRATION_LOCK = 0x70676174  # pg_advisory_xact_lock key: one node migrates at a time


def migrations() -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of pg_migrations/NNNN_*.sql, in order."""
    folder = resources.files("pygate.server.admin_api").joinpath("pg_migrations")
    out = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            out.append((int(entry.name.split("_", 1)[0]), entry.name, entry.read_text()))
    return sorted(out)


class PostgresStateDB(PendingAudit):
    PARAM = "%s"

    def __init__(self, url: str, cache_path: str) -> None:
        self.url = url
        self.path = redacted(url)  # how logs, errors and status name it
        self.cache_path = cache_path
        self.connected = False
        self.since = time.time()
        self._cache = self._read_cache()
        try:
            applied = self.migrate()
        except AdminStateError as exc:
            if self._cache is None:
                raise AdminStateError(
                    f"{exc}; and no cached config in {cache_path} to serve meanwhile"
                ) from exc
            log.warning("%s; serving the cached config (version %s)", exc, self._cache["version"])
        else:
            if applied:
                log.info("admin state %s: applied migrations %s", self.path, applied)

    # ----- connections --------------------------------------------------------------
    def _error(self, exc: Exception) -> AdminStateError:
        self._mark(False)
        message = scrub(str(exc).strip(), self.url) or type(exc).__name__
        return AdminStateError(f"admin state {self.path}: {message}")

    def _mark(self, connected: bool) -> None:
        if connected != self.connected:
            self.connected = connected
            self.since = time.time()
            if connected:
                log.info("admin state %s: connected", self.path)
            else:
                log.warning("admin state %s: unreachable; serving the last config", self.path)

    @contextlib.contextmanager
    def _connect(self) -> Iterator[Any]:
        import psycopg

        try:
            with psycopg.connect(self.url, connect_timeout=CONNECT_TIMEOUT_S) as db:
                with db.transaction():
                    yield db
        except psycopg.Error as exc:
            raise self._error(exc) from None
        self._mark(True)

    def migrate(self) -> list[int]:
        """Apply the migrations not yet in schema_migrations, each once; their versions."""
        applied = []
        with self._connect() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY,"
                " name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in db.execute("SELECT version FROM schema_migrations")}
            for version, name, sql in migrations():
                if version in done:
                    continue
                db.execute(sql)
                db.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (version, name),
                )
                applied.append(version)
        return applied

    # ----- the on-disk cache --------------------------------------------------------
    def _read_cache(self) -> dict[str, Any] | None:
        try:
            with open(self.cache_path, "rb") as fh:
                return orjson.loads(fh.read())
        except (OSError, orjson.JSONDecodeError):
            return None

    def _write_cache(self, entities: Entities, version: int, file_hash: str | None) -> None:
        cache = {
            "version": version,
            "entities": entities,
            "file_hash": file_hash,
            "fingerprint_key": (self._cache or {}).get("fingerprint_key"),
        }
        if cache == self._cache:
            return
        folder = os.path.dirname(os.path.abspath(self.cache_path))
        try:
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".pygate-state-")  # mode 0600
            with os.fdopen(fd, "wb") as fh:
                fh.write(orjson.dumps(cache))
            os.chmod(tmp, 0o600)
            os.replace(tmp, self.cache_path)
        except OSError as exc:
            log.warning("admin state cache %s: %s", self.cache_path, exc)
            return
        self._cache = cache

    def _cached(self, key: str) -> Any:
        if self._cache is None:
            raise AdminStateError(f"admin state {self.path}: unreachable, and nothing cached")
        return self._cache[key]

    # ----- the interface of AdminStateDB --------------------------------------------
    def status(self) -> dict[str, Any]:
        return {
            "state_backend": "postgresql",
            "state_url": self.path,
            "state_connected": self.connected,
            "state_since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "state_version": (self._cache or {}).get("version"),
        }

    def is_seeded(self) -> bool:
        return self.file_hash() is not None

    def file_hash(self) -> str | None:
        try:
            with self._connect() as db:
                row = db.execute("SELECT value FROM meta WHERE key = %s", (_FILE_HASH,)).fetchone()
            return row[0] if row else None
        except AdminStateError:
            return self._cached("file_hash")

    def fingerprint_key(self) -> bytes:
        try:
            with self._connect() as db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                    (_FINGERPRINT_KEY, secrets.token_hex(32)),
                )
                row = db.execute(
                    "SELECT value FROM meta WHERE key = %s", (_FINGERPRINT_KEY,)
                ).fetchone()
            key = row[0]
        except AdminStateError:
            key = self._cached("fingerprint_key")
            if key is None:
                raise
        if self._cache is not None:
            self._cache["fingerprint_key"] = key
        else:
            self._cache = {"version": None, "entities": None, "file_hash": None,
                           "fingerprint_key": key}  # fmt: skip
        return bytes.fromhex(key)

    def version(self) -> int:
        with self._connect() as db:
            return db.execute("SELECT version FROM state_version WHERE id = 1").fetchone()[0]

    def entities(self) -> Entities:
        return self.entities_versioned()[0]

    def entities_versioned(self) -> tuple[Entities, int]:
        """The document and its version; the cached one while Postgres is down."""
        out: Entities = {section: [] for section in KINDS}
        try:
            with self._connect() as db:
                version = db.execute("SELECT version FROM state_version WHERE id = 1").fetchone()[0]
                rows = db.execute(
                    "SELECT section, body FROM entities ORDER BY section, position"
                ).fetchall()
                row = db.execute("SELECT value FROM meta WHERE key = %s", (_FILE_HASH,)).fetchone()
        except AdminStateError:
            entities = self._cached("entities")
            if entities is None:
                raise
            return entities, self._cached("version")
        for section, body in rows:
            if section in out:
                out[section].append(orjson.loads(body))
        self._write_cache(out, version, row[0] if row else None)
        return out, version

    def replace(
        self,
        entities: Entities,
        audit_rows: list[dict[str, Any]],
        file_hash: str | None = None,
        expected_version: int | None = None,
    ) -> int:
        """Store `entities` and queue `audit_rows` in one transaction; the new version.

        The version row is locked first, so two nodes' writes run one after the other;
        with `expected_version`, a write based on an older document is a StaleState."""
        with self._connect() as db:
            version = db.execute(
                "SELECT version FROM state_version WHERE id = 1 FOR UPDATE"
            ).fetchone()[0]
            if expected_version is not None and version != expected_version:
                raise StaleState(f"admin state {self.path}: changed by another node")
            db.execute("DELETE FROM entities")
            with db.cursor() as cur:
                cur.executemany(
                    "INSERT INTO entities (section, position, name, body) VALUES (%s, %s, %s, %s)",
                    [
                        (section, position, str(item["name"]), orjson.dumps(item).decode())
                        for section in KINDS
                        for position, item in enumerate(entities.get(section, []))
                    ],
                )
                if audit_rows:
                    cur.executemany(
                        "INSERT INTO audit_pending (row) VALUES (%s)",
                        [(orjson.dumps(row).decode(),) for row in audit_rows],
                    )
            if file_hash is not None:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES (%s, %s)"
                    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (_FILE_HASH, file_hash),
                )
            else:
                row = db.execute("SELECT value FROM meta WHERE key = %s", (_FILE_HASH,)).fetchone()
                file_hash = row[0] if row else None
            version += 1
            db.execute("UPDATE state_version SET version = %s WHERE id = 1", (version,))
            db.execute("SELECT pg_notify(%s, %s)", (CHANNEL, str(version)))
        self._write_cache(entities, version, file_hash)
        return version
