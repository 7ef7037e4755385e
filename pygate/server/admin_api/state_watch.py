"""Keeps a node's config at the shared state's version (Postgres only).

LISTEN pygate_state: every write sends its new version, and a node that serves an
older one reloads (the Reloader re-reads the file and the state, exactly as SIGHUP).
A full version check every FULL_CHECK_S is the backstop for a lost notification,
and a connection that breaks is retried every RETRY_S; on reconnecting the node
checks at once, so it catches up with what changed while it was away.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from pygate.config.state_url import scrub
from pygate.server.admin_api.pgstate import CHANNEL, CONNECT_TIMEOUT_S, PostgresStateDB
from pygate.server.admin_api.statedb import AdminStateError

log = logging.getLogger("pygate")

FULL_CHECK_S = 10.0
RETRY_S = 1.0


async def follow_state(
    db: PostgresStateDB,
    served_version: Callable[[], int | None],
    reload: Callable[[str], Awaitable[object]],
) -> None:
    import psycopg

    loop = asyncio.get_running_loop()

    async def catch_up() -> None:
        try:
            version = await loop.run_in_executor(None, db.version)
        except AdminStateError:
            return
        if version != served_version():
            await reload(f"admin state version {version}")

    while True:
        try:
            conn = await psycopg.AsyncConnection.connect(
                db.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
            )
        except psycopg.Error as exc:
            db._mark(False)
            log.debug("admin state listener: %s", scrub(str(exc), db.url))
            await asyncio.sleep(RETRY_S)
            continue
        try:
            async with conn:
                await conn.execute(f"LISTEN {CHANNEL}")
                await catch_up()
                while True:
                    async for notify in conn.notifies(timeout=FULL_CHECK_S, stop_after=1):
                        if notify.payload.isdigit() and int(notify.payload) == served_version():
                            continue
                        break
                    await catch_up()
        except psycopg.Error as exc:
            db._mark(False)
            log.debug("admin state listener: %s", scrub(str(exc), db.url))
            await asyncio.sleep(RETRY_S)
