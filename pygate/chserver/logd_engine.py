"""`logs serve` on a store that logd owns: every statement goes to logd and runs there.

The same interface as engine.ChdbEngine (open, run, check, close), so the HTTP side
(users, Host/Origin rules, HTTP sessions, compression) is unchanged; the statement
check, the pinned settings and the read-only session are logd's, next to the store
(pygate/logd/serve_backend.py). Calls block on the socket, so they run on one worker
thread, as ChdbEngine's do.

logd may restart under us (its gateway restarts it, or an operator does): a statement
that cannot write anything is sent once more on a new connection; one that may write
is not (it may have run), and the client gets the error.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from pygate.chserver import wire
from pygate.chserver.engine import Outcome, ServerInfo, Statement, StoreUnavailable
from pygate.chserver.errors import ClickHouseError
from pygate.config import LoadedConfig
from pygate.logd import protocol as p
from pygate.logd.client import LogdStore
from pygate.logstore.base import StoreUnavailable as LogdUnavailable

# ClickHouse's NETWORK_ERROR: what a client sees when its server's storage is away.
NETWORK_ERROR = 210


class LogdEngine:
    def __init__(self, loaded: LoadedConfig) -> None:
        self._logd = LogdStore(loaded, role="logs-serve")
        self.path = self._logd.path
        self.description = f"store {loaded.store.path} through logd {self.path}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="logd")
        self.info: ServerInfo | None = None

    def open(self) -> ServerInfo:
        """Connect (identities checked: WrongLogd for another store) and ask for logd's
        server info. Raises StoreUnavailable when no logd answers."""
        try:
            answer = self._executor.submit(self._call, p.SERVE_OPEN, b"", True).result()
        except ClickHouseError as exc:
            raise StoreUnavailable(f"logd at {self.path}: {exc.message}") from exc
        self.info = wire.decode_info(answer)
        return self.info

    def close(self) -> None:
        self._executor.submit(self._logd.close).result()
        self._executor.shutdown(wait=True)

    async def run(self, statement: Statement) -> Outcome:
        payload = wire.encode_statement(statement)
        retry = not statement.writable
        answer = await self._submit(p.SERVE_RUN, payload, retry)
        return wire.decode_outcome(answer)

    async def check(self, database: str, settings: dict[str, str], writable: bool) -> None:
        await self._submit(p.SERVE_CHECK, wire.encode_check(database, settings, writable), True)

    async def _submit(self, op: int, payload: bytes, retry: bool) -> bytes:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._call, op, payload, retry)

    def _call(self, op: int, payload: bytes, retry: bool) -> bytes:
        try:
            status, answer = self._logd.exchange(op, payload)
        except LogdUnavailable as exc:
            if not retry:
                raise _unavailable(exc) from exc
            try:
                status, answer = self._logd.exchange(op, payload)
            except LogdUnavailable as again:
                raise _unavailable(again) from again
        if status == p.OK:
            return answer
        if status == p.CH_ERROR:
            raise wire.decode_error(answer)
        raise _unavailable(answer.decode(errors="replace"))


def _unavailable(reason: object) -> ClickHouseError:
    message = f"the log store (pygate logd) is not answering: {reason}"
    return ClickHouseError(NETWORK_ERROR, message, "NETWORK_ERROR")
