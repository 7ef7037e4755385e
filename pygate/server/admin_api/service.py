"""The admin API's engine: entity state, validation, live swaps and the audit trail.

Writes are serialised with config reloads (one lock, the Reloader's): a change reads
the current document, applies itself, is validated as a whole together with the
file's process settings, is swapped into the core (and the Python side) exactly as a
SIGHUP reload would, and only then is stored with its audit rows in one SQLite
transaction; if storing fails, the previous config goes back into the core.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import os
from collections.abc import Callable
from typing import Any

from pygate.config import ConfigError, LoadedConfig
from pygate.config.state_url import is_postgres
from pygate.logstore import LogStore
from pygate.server.admin_api.audit import AuditShipper, Who, change_rows
from pygate.server.admin_api.document import (
    KINDS,
    Entities,
    canonical,
    entities_hash,
    entities_of,
    settings_of,
)
from pygate.server.admin_api.errors import ApiError, conflict, invalid, problems_of, unavailable
from pygate.server.admin_api.secrets import Fingerprints, all_secrets, scrub
from pygate.server.admin_api.statedb import AdminStateDB, AdminStateError, StaleState
from pygate.server.admin_api.validation import effective_config
from pygate.server.reload import Reloader, ReloadRefused

log = logging.getLogger("pygate")

# Applies a change to a copy of the document, in place; raises ApiError to refuse it.
Mutation = Callable[[Entities], None]


# A write that lost the race with another node's is re-applied on the new document.
_STALE_RETRIES = 5
# The Postgres state's last document, next to the config file (mode 0600).
STATE_CACHE_FILE = "pygate-admin-state.cache.json"


def state_path(loaded: LoadedConfig) -> str:
    base_dir = os.path.dirname(loaded.abspath)
    return os.path.join(base_dir, os.path.expanduser(loaded.config.admin.state))


def open_state(loaded: LoadedConfig) -> Any:
    """The backend `admin.state` names: a Postgres URL, else a SQLite file."""
    state = loaded.config.admin.state
    if is_postgres(state):
        from pygate.server.admin_api.pgstate import PostgresStateDB

        cache = os.path.join(os.path.dirname(loaded.abspath), STATE_CACHE_FILE)
        return PostgresStateDB(state, cache)
    return AdminStateDB(state_path(loaded))


class AdminService:
    def __init__(self, db: Any, config_file: str) -> None:
        self.db = db  # statedb.AdminStateDB or pgstate.PostgresStateDB: the same calls
        self.config_file = config_file
        self.fingerprints = Fingerprints(db.fingerprint_key())
        self.reloader: Reloader | None = None
        self.audit: AuditShipper | None = None
        self._audit_task: asyncio.Task | None = None
        self._follow_task: asyncio.Task | None = None
        # The state version the served config was built from (None: not loaded yet).
        self.served_version: int | None = None

    @classmethod
    def open(cls, loaded: LoadedConfig) -> AdminService:
        """Open (or create) the state `admin.state` names; AdminStateError."""
        return cls(open_state(loaded), loaded.file)

    def state_status(self) -> dict[str, Any]:
        """The state backend for /status: backend, connected, since when, version."""
        return {**self.db.status(), "state_served_version": self.served_version}

    def state_ready(self) -> bool:
        """True once a config from the state (or its cache) is served: for /readyz."""
        return self.served_version is not None

    # ----- the file and the state -------------------------------------------------
    def resolve(self, loaded: LoadedConfig) -> tuple[LoadedConfig, Callable[[], None] | None]:
        """The config to serve for the file just read, and what to store once it serves.

        The file's entities win when they differ from the last ones seen (first start,
        or an edit): they replace the state, audited as actor file:<path>. Otherwise the
        state's entities are served with the file's process settings. Raises ConfigError.
        """
        file_entities = entities_of(loaded.source.data)
        fingerprint = entities_hash(file_entities)
        if self.db.file_hash() != fingerprint:
            who = Who(actor=f"file:{loaded.abspath}", client="", request="file import")
            rows = change_rows(self.db.entities(), file_entities, who, self.fingerprints.redact_one)

            def persist() -> None:
                self.served_version = self.db.replace(file_entities, rows, fingerprint)

            return loaded, persist
        label = f"{loaded.file} + admin state {self.db.path}"
        settings = settings_of(loaded.source.data)
        entities, version = self.db.entities_versioned()
        served = effective_config(settings, entities, loaded.abspath, label)

        def mark_served() -> None:
            self.served_version = version

        return served, mark_served

    def attach(self, reloader: Reloader, store: LogStore) -> None:
        """Start serving writes (through `reloader`) and shipping audit rows to `store`."""
        self.reloader = reloader
        self.audit = AuditShipper(self.db, store)
        self._audit_task = asyncio.create_task(self.audit.run())
        if hasattr(self.db, "url"):  # Postgres: follow the other nodes' writes
            from pygate.server.admin_api.state_watch import follow_state

            self._follow_task = asyncio.create_task(
                follow_state(self.db, lambda: self.served_version, reloader.reload)
            )

    async def close(self) -> None:
        if self._follow_task is not None:
            self._follow_task.cancel()
            await asyncio.gather(self._follow_task, return_exceptions=True)
        if self._audit_task is not None:
            self._audit_task.cancel()
            await asyncio.gather(self._audit_task, return_exceptions=True)
        if self.audit is not None and not await self.audit.flush():
            log.warning("audit log: rows left in %s are shipped at the next start", self.db.path)

    # ----- reads and writes -------------------------------------------------------
    async def entities(self) -> Entities:
        """The stored document, secrets and all: for changes, never for answers."""
        return await self._run(self.db.entities)

    async def shown(self) -> Entities:
        """The document as answers show it: secrets as fingerprints."""
        return self.fingerprints.redact(await self.entities())

    def show(self, entities: Entities) -> Entities:
        return self.fingerprints.redact(entities)

    async def change(self, who: Who, mutate: Mutation, *, refusal: int = 400) -> Entities:
        """Apply `mutate` and serve the result; returns the new document.

        A document the validation refuses is a 400 naming the fields, or a 409 when
        `refusal` says so (deleting something that others still need).
        """
        for attempt in range(_STALE_RETRIES):
            try:
                return await self._change_once(who, mutate, refusal)
            except StaleState:
                if attempt == _STALE_RETRIES - 1:
                    raise unavailable("the admin state kept changing under this write") from None
                log.info("admin: %s raced another node's write; applying it again", who.request)
        raise AssertionError("unreachable")

    async def _change_once(self, who: Who, mutate: Mutation, refusal: int) -> Entities:
        reloader = self._require_reloader()
        async with reloader.lock:
            before, base_version = await self._run(self.db.entities_versioned)
            after = copy.deepcopy(before)
            mutate(after)
            # Secrets named by fingerprint are the ones the state already has.
            try:
                after = self.fingerprints.resolve(after, before)
            except ApiError as exc:
                raise _scrubbed(exc, after) from None
            if after == before:
                return before
            settings = settings_of(reloader.current.source.data)
            label = f"admin API ({who.request})"
            try:
                loaded = await self._run(
                    effective_config, settings, after, reloader.current.abspath, label
                )
            except ConfigError as exc:
                raise _scrubbed(self._refused(exc, refusal), after) from exc
            after = {
                section: [canonical(item, schema) for item in after[section]]
                for section, (_, schema) in KINDS.items()
            }
            rows = change_rows(before, after, who, self.fingerprints.redact_one)

            def persist() -> None:
                self.served_version = self.db.replace(after, rows, expected_version=base_version)

            try:
                await reloader.install(loaded, persist)
            except StaleState:
                raise
            except AdminStateError as exc:
                raise unavailable(str(exc)) from exc
            except ValueError as exc:
                raise _scrubbed(self._refused(loaded.core_error(exc), refusal), after) from exc
            except ReloadRefused as exc:  # the Python plugin chains could not be built
                cause = exc.__cause__
                if isinstance(cause, ConfigError):
                    raise _scrubbed(self._refused(cause, refusal), after) from exc
                raise _scrubbed(invalid([{"path": "", "message": str(exc)}]), after) from exc
        log.info("admin: %s by %s (%d entities changed)", who.request, who.actor, len(rows))
        if self.audit is not None:
            self.audit.notify()
        return after

    @staticmethod
    def _refused(exc: ConfigError, refusal: int) -> ApiError:
        problems = problems_of(exc)
        if refusal == 409:
            return conflict("the change would leave the config invalid", problems)
        return invalid(problems)

    def _require_reloader(self) -> Reloader:
        if self.reloader is None:
            raise unavailable("the gateway is still starting")
        return self.reloader

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return await asyncio.get_running_loop().run_in_executor(None, fn, *args)
        except AdminStateError as exc:
            raise unavailable(str(exc)) from exc


def _scrubbed(exc: ApiError, document: Any) -> ApiError:
    """`exc` with every secret of `document` (whole or one entity) blanked out."""
    entities = document if isinstance(document, dict) and set(document) <= set(KINDS) else {}
    secrets = all_secrets(entities) if entities else []
    return ApiError(exc.status, scrub(exc.body, secrets))
