"""From the statement a client sent to what runs: INSERT with data, USE, SET or a query."""

from __future__ import annotations

from dataclasses import dataclass

from pygate.chserver.engine import ChdbEngine, Outcome, Statement
from pygate.chserver.errors import ACCESS_DENIED, READONLY, SYNTAX_ERROR, ClickHouseError
from pygate.chserver.params import setting_value
from pygate.chserver.sessions import HttpSession
from pygate.chserver.sqltext import (
    check_single_statement,
    first_keyword,
    output_format,
    parse_set,
    parse_use,
    split_insert,
)
from pygate.logstore.sql_policy import FORMATS


@dataclass(slots=True)
class QueryContext:
    """Who runs the statement, and with what, once the HTTP layer has worked it out."""

    database: str
    settings: dict[str, str]  # session settings overlaid with the request's
    query_params: dict[str, str]
    writable: bool
    default_format: str
    session: HttpSession | None


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    fmt: str


async def execute(engine: ChdbEngine, ctx: QueryContext, statement: bytes) -> Result:
    insert = split_insert(statement)
    if insert is not None:
        data = memoryview(statement)[insert.data_offset :]
        run = Statement(
            database=ctx.database,
            settings=ctx.settings,
            writable=ctx.writable,
            fmt=ctx.default_format,
            insert=insert,
            data=data,
        )
        return Result(await engine.run(run), ctx.default_format)

    try:
        text = statement.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ClickHouseError(SYNTAX_ERROR, f"The query is not valid UTF-8: {exc}") from None
    if not text.strip():
        raise ClickHouseError(SYNTAX_ERROR, "Empty query")
    check_single_statement(text)
    keyword = first_keyword(text)
    if keyword == "USE":
        return Result(await _use(engine, ctx, parse_use(text)), ctx.default_format)
    if keyword == "SET":
        return Result(await _set(engine, ctx, parse_set(text)), ctx.default_format)
    fmt = output_format(text) or ctx.default_format
    if fmt.lower() not in FORMATS:
        raise ClickHouseError(ACCESS_DENIED, f"pygate logs serve: format {fmt} is not allowed")
    run = Statement(
        database=ctx.database,
        settings=ctx.settings,
        writable=ctx.writable,
        fmt=fmt,
        sql=text,
        params=ctx.query_params,
    )
    return Result(await engine.run(run), fmt)


async def _use(engine: ChdbEngine, ctx: QueryContext, database: str) -> Outcome:
    # Checked against the store (unknown database -> UNKNOWN_DATABASE), then kept
    # by the HTTP session; without a session USE has no lasting effect, as in ClickHouse.
    await engine.check(database, ctx.settings, False)
    if ctx.session is not None:
        ctx.session.database = database
    return Outcome(body=b"")


async def _set(engine: ChdbEngine, ctx: QueryContext, changes: dict[str, str]) -> Outcome:
    # Checked by applying them (unknown setting -> UNKNOWN_SETTING), then kept by the
    # HTTP session. `readonly` is the server's business (see params.py), never chDB's.
    lowered = setting_value(changes.get("readonly")) in ("0", "")
    if "readonly" in changes and lowered and not ctx.writable:
        # As ClickHouse answers a read-only user: lowering readonly is itself a write.
        raise ClickHouseError(READONLY, "Cannot modify 'readonly' setting in readonly mode")
    checked = {name: value for name, value in {**ctx.settings, **changes}.items()}
    checked.pop("readonly", None)
    await engine.check(ctx.database, checked, False)
    if ctx.session is not None:
        ctx.session.settings.update(changes)
    return Outcome(body=b"")
