"""The chDB side: the store's chDB sessions, used by one thread at a time.

chDB calls block and a data directory belongs to one process, so every chDB call of
the server runs one statement at a time: on a single worker thread (ChdbEngine, when
`logs serve` opens the store itself), or in `pygate logd` under a lock, when logd owns
the store and `logs serve` forwards each statement to it (logd_engine.py). The
sessions (ChdbStatements) are two on the directory:

- a read-only one (`?mode=ro`, ClickHouse's readonly=2: settings may change, data
  may not, and allow_ddl=0) that runs every read, of every user;
- a writable one, opened only when some user may write, that runs only INSERTs into
  pygate's tables.

chDB has no users or grants and runs table functions, `file()` and `INTO OUTFILE`
even read-only, so every statement passes the statement check (pygate/logstore/
sql_guard.py: parsed by this chDB, allowed by AST) on this thread right before it
runs; the check decides which session runs it. A few settings are pinned (PINNED):
they change how a statement is parsed or how INSERT data is read.

ClickHouse HTTP sessions are emulated on top (see sessions.py): before a statement
runs, the chDB session is switched to the statement's database and settings, and
only what differs from the previous statement is changed, so a client that sends the
same settings on every request costs no extra chDB calls.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pygate.chserver.errors import ACCESS_DENIED, READONLY, ClickHouseError
from pygate.chserver.sqltext import InsertWithData
from pygate.logstore.chdb_store import stage_insert_data
from pygate.logstore.sql_guard import Checked, SqlGuard, StatementInvalid, StatementRefused

T = TypeVar("T")

# Inside the data directory, which chDB's lock makes this process's alone; one engine
# thread means one insert at a time.
_STAGING_FILE = "pygate-chserver-insert.data"
# Settings no client may change: the statement check parses ClickHouse SQL (another
# dialect would run what it never saw), DDL is never allowed, and a Values row must be
# data, not an expression such as file('/etc/passwd').
PINNED = {
    "dialect": "'clickhouse'",
    "allow_settings_after_format_in_insert": "0",
    "allow_ddl": "0",
    "input_format_values_interpret_expressions": "0",
    "input_format_values_deduce_templates_of_expressions": "0",
}


class StoreUnavailable(Exception):
    """The store cannot be opened; the message says why, for the operator."""


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement to run, with everything it runs with."""

    database: str
    settings: dict[str, str]  # name -> SQL literal
    writable: bool  # the user may write: INSERTs into pygate's tables
    fmt: str  # output format unless the SQL has a FORMAT clause
    sql: str = ""  # empty when `insert` is set
    params: dict[str, str] = field(default_factory=dict)  # {name:Type} substitutions
    insert: InsertWithData | None = None
    data: bytes | memoryview = b""  # the rows of `insert`


@dataclass(frozen=True, slots=True)
class Outcome:
    body: bytes
    read_rows: int = 0
    read_bytes: int = 0
    written_rows: int = 0
    written_bytes: int = 0
    elapsed_ns: int = 0


@dataclass(frozen=True, slots=True)
class ServerInfo:
    version: str
    timezone: str
    http_compression_default: bool


@dataclass(slots=True)
class _ChdbSession:
    session: Any  # chdb.session.Session
    database: str = "default"
    settings: dict[str, str] = field(default_factory=dict)  # applied with SET


class ChdbStatements:
    """The sessions and the statements, without threads: whoever holds one runs it on
    one thread at a time (ChdbEngine's worker here, a lock in `pygate logd`, which
    serves `logs serve` statements from the store it owns)."""

    def __init__(self, path: str, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self._reader: _ChdbSession | None = None
        self._writer: _ChdbSession | None = None
        self.info: ServerInfo | None = None
        self._guard = SqlGuard(self._reader_rows)

    # ----- lifecycle -------------------------------------------------------------------

    def open(self) -> ServerInfo:
        from chdb import session as chdb_session

        if not self.writable and not os.path.isdir(self.path):
            raise StoreUnavailable(
                f"no log store at {self.path} (has a gateway run with this config yet? "
                "or start with --allow-writes to create it)"
            )
        try:
            if self.writable:
                self._writer = _ChdbSession(chdb_session.Session(self.path))
            self._reader = _ChdbSession(chdb_session.Session(f"{self.path}?mode=ro"))
        except Exception as exc:
            self.close()
            raise StoreUnavailable(
                f"cannot open the chDB store at {self.path}: {ClickHouseError.from_chdb(exc)}. "
                "chDB lets one process use a data directory: if a gateway is running with "
                "this store, stop it first, or give `logs serve` a copy of the directory"
            ) from exc
        reader = self._reader.session
        version, timezone = (
            reader.query("SELECT version(), timezone()", "TSVRaw").bytes().decode().split("\t")
        )
        compression = reader.query(
            "SELECT value FROM system.settings WHERE name = 'enable_http_compression'", "TSVRaw"
        )
        self.info = ServerInfo(
            version.strip(), timezone.strip(), compression.bytes().strip() in (b"1", b"true")
        )
        self._guard.catalog  # noqa: B018 - loaded before any client's settings apply
        return self.info

    def allow_writes(self) -> None:
        """Open the writable session too (logd opens it for the first writing server)."""
        if self._writer is None:
            from chdb import session as chdb_session

            self._writer = _ChdbSession(chdb_session.Session(self.path))
        self.writable = True

    def close(self) -> None:
        for name in ("_reader", "_writer"):
            state = getattr(self, name)
            setattr(self, name, None)
            if state is not None:
                state.session.cleanup()

    # ----- statements ----------------------------------------------------------------

    def check(self, database: str, settings: dict[str, str], writable: bool) -> None:
        """Fail as chDB would if `database` does not exist or a setting is invalid."""
        self._prepare(database, settings, writable)

    def run(self, statement: Statement) -> Outcome:
        # The reader first: the check then parses under this client's own settings,
        # never under what the previous client left in the session.
        state = self._prepare(statement.database, statement.settings, False)
        if self._check(statement).kind == "insert":
            state = self._prepare(statement.database, statement.settings, True)
        started = time.perf_counter_ns()
        if statement.insert is not None:
            return self._insert(state, statement.insert, statement.data, started)
        try:
            result = state.session.query(statement.sql, statement.fmt, params=statement.params)
        except Exception as exc:
            raise ClickHouseError.from_chdb(exc) from exc
        return Outcome(
            body=result.bytes(),
            read_rows=result.rows_read(),
            read_bytes=result.bytes_read(),
            written_rows=result.rows_written(),
            written_bytes=result.bytes_written(),
            elapsed_ns=time.perf_counter_ns() - started,
        )

    def _check(self, statement: Statement) -> Checked:
        sql = statement.sql
        if statement.insert is not None:
            sql = f"{statement.insert.query}\nFORMAT {statement.insert.fmt}"
        try:
            checked = self._guard.check(sql, database=statement.database, writes=statement.writable)
        except StatementInvalid as exc:
            raise ClickHouseError(exc.code, str(exc).split(". DB::Exception: ", 1)[-1]) from None
        except StatementRefused as exc:
            code = READONLY if _is_write(sql) else ACCESS_DENIED
            raise ClickHouseError(code, f"pygate logs serve: {exc}") from None
        if statement.insert is not None and (
            checked.kind != "insert" or (checked.fmt or "").lower() != statement.insert.fmt.lower()
        ):
            # The parser did not see the FORMAT where the server cut the data off.
            raise ClickHouseError(ACCESS_DENIED, "pygate logs serve: cannot check this INSERT")
        return checked

    def _reader_rows(self, sql: str) -> list[list]:
        import orjson

        if self._reader is None:
            raise RuntimeError("the store is closed")
        return orjson.loads(self._reader.session.query(sql, "JSONCompact").bytes())["data"]

    def _insert(
        self, state: _ChdbSession, insert: InsertWithData, data: bytes | memoryview, started: int
    ) -> Outcome:
        # The client's bytes go to chDB as they are (no decoding of Native/RowBinary in
        # Python), through a staging file (see stage_insert_data for why not chDB's
        # streaming inserter).
        try:
            select = stage_insert_data(os.path.join(self.path, _STAGING_FILE), data, insert.fmt)
        except OSError as exc:
            raise ClickHouseError.from_chdb(exc) from exc
        sql = f"{insert.query} {select}"
        try:
            result = state.session.query(sql)
        except Exception as exc:
            raise ClickHouseError.from_chdb(exc) from exc
        return Outcome(
            body=b"",
            written_rows=int(result.rows_written()),
            written_bytes=int(result.bytes_written()),
            elapsed_ns=time.perf_counter_ns() - started,
        )

    def _prepare(self, database: str, settings: dict[str, str], writable: bool) -> _ChdbSession:
        state = self._writer if writable else self._reader
        if state is None:
            raise ClickHouseError(READONLY, "Cannot execute query in readonly mode")
        settings = _with_pinned(settings)
        if state.database != database:
            try:
                state.session.query(f"USE {quote_identifier(database)}")
            except Exception as exc:
                raise ClickHouseError.from_chdb(exc) from exc
            state.database = database
        changes = [
            f"{name} = {value}"
            for name, value in settings.items()
            if state.settings.get(name) != value
        ]
        changes += [f"{name} = DEFAULT" for name in state.settings if name not in settings]
        if changes:
            try:
                state.session.query("SET " + ", ".join(changes))
            except Exception as exc:
                self._reset_settings(state, settings)
                raise ClickHouseError.from_chdb(exc) from exc
            state.settings = dict(settings)
        return state

    @staticmethod
    def _reset_settings(state: _ChdbSession, attempted: dict[str, str]) -> None:
        # After a failed SET we cannot tell which settings took: put back every one
        # we may have touched, one by one so that an unknown name does not stop the rest.
        for name in {*state.settings, *attempted}:
            try:
                state.session.query(f"SET {name} = DEFAULT")
            except Exception:  # noqa: BLE001 - an unknown setting never took effect
                pass
        state.settings = {}


class ChdbEngine:
    """`logs serve`'s own store: every chDB call on one worker thread, one at a time."""

    def __init__(self, path: str, *, writable: bool) -> None:
        self.path = path
        self.description = f"store {path}"
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="chdb")
        self._core = ChdbStatements(path, writable=writable)
        self.info: ServerInfo | None = None

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def open(self) -> ServerInfo:
        self.info = self._executor.submit(self._core.open).result()
        return self.info

    def close(self) -> None:
        self._executor.submit(self._core.close).result()
        self._executor.shutdown(wait=True)

    async def run(self, statement: Statement) -> Outcome:
        return await self.call(self._core.run, statement)

    async def check(self, database: str, settings: dict[str, str], writable: bool) -> None:
        await self.call(self._core.check, database, settings, writable)


def _with_pinned(settings: dict[str, str]) -> dict[str, str]:
    for name, value in settings.items():
        if name in PINNED and value.strip("'") != PINNED[name].strip("'"):
            raise ClickHouseError(
                READONLY, f"Cannot modify '{name}' setting: pygate logs serve fixes it"
            )
    return {**settings, **PINNED}


def _is_write(sql: str) -> bool:
    """Not a read statement: refusing it is ClickHouse's READONLY, as a read-only user
    gets; a read that touches what it may not is ACCESS_DENIED."""
    from pygate.chserver.sqltext import first_keyword

    try:
        keyword = first_keyword(sql)
    except ClickHouseError:
        return False
    return keyword not in ("SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXISTS", "EXPLAIN")


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
