"""The aiohttp application: ClickHouse's HTTP interface in front of the chDB engine.

GET  /ping, /replicas_status, / (no query)   "Ok.\\n"
GET  /?query=SQL                              read-only, as on ClickHouse
POST /?query=SQL  with or without a body      the body is appended to `query`
POST /            with the SQL in the body    (and INSERT data after it)

Every request must come to one of the server's own names (Host), and not from a web
page of another site (Origin, Sec-Fetch-Site): see pygate/server/browser_guard.py. ClickHouse
clients send neither Origin nor Sec-Fetch-Site, whatever their Content-Type.
"""

from __future__ import annotations

import logging
import socket
import uuid
from dataclasses import dataclass, field

import orjson
from aiohttp import web

from pygate.chserver.auth import Authenticator, User, credentials_of
from pygate.chserver.compression import choose_encoding, compress, decompress_body
from pygate.chserver.dispatch import QueryContext, Result, execute
from pygate.chserver.engine import ChdbEngine, ServerInfo
from pygate.chserver.errors import (
    ACCESS_DENIED,
    LOGICAL_ERROR,
    NOT_IMPLEMENTED,
    QUERY_IS_TOO_LARGE,
    ClickHouseError,
)
from pygate.chserver.formats import DEFAULT_FORMAT, content_type
from pygate.chserver.params import setting_value, split_params
from pygate.chserver.sessions import HttpSession, SessionRegistry
from pygate.server.browser_guard import SiteRules, fetch_site_problem

_log = logging.getLogger("pygate.chserver")
_STATE = web.AppKey("state", "ServerState")
_OK = b"Ok.\n"
_CHUNK = 1 << 20
# Lets browser-based tools read the headers ClickHouse clients look at.
_EXPOSED = (
    "X-ClickHouse-Query-Id,X-ClickHouse-Summary,X-ClickHouse-Server-Display-Name,"
    "X-ClickHouse-Format,X-ClickHouse-Timezone,X-ClickHouse-Exception-Code"
)


@dataclass(slots=True)
class ServerState:
    engine: ChdbEngine
    info: ServerInfo
    auth: Authenticator
    max_body_bytes: int
    display_name: str = field(default_factory=socket.gethostname)
    sessions: SessionRegistry = field(default_factory=SessionRegistry)
    site_rules: SiteRules | None = None  # set once the listener is bound


@web.middleware
async def _same_site_only(request: web.Request, handler) -> web.StreamResponse:
    """Refuse DNS-rebound and cross-site requests before anything else happens."""
    state = request.app[_STATE]
    rules = state.site_rules
    if rules is None:  # not serving yet
        return _error(state, ClickHouseError(ACCESS_DENIED, "the server is starting"), {})
    host = request.headers.get("Host")
    if not rules.host_allowed(host):
        problem = (
            f"Host {host!r} is not this server's address; add the name to "
            "log.serve.allowed_hosts if it is one"
        )
    else:
        problem = rules.origin_problem(request.headers.getall("Origin", []), host)
        problem = problem or fetch_site_problem(request.headers.get("Sec-Fetch-Site"))
    if problem is not None:
        return _error(state, ClickHouseError(ACCESS_DENIED, f"pygate logs serve: {problem}"), {})
    return await handler(request)


async def _ok(_request: web.Request) -> web.Response:
    return web.Response(body=_OK, content_type="text/html", charset="UTF-8")


async def _root_get(request: web.Request) -> web.StreamResponse:
    if "query" not in request.query:
        return await _ok(request)
    return await _query(request)


async def _query(request: web.Request) -> web.StreamResponse:
    state = request.app[_STATE]
    params = {name: request.query.getone(name) for name in request.query}
    query_id = params.get("query_id") or str(uuid.uuid4())
    headers = {
        "X-ClickHouse-Query-Id": query_id,
        "X-ClickHouse-Timezone": state.info.timezone,
        "X-ClickHouse-Server-Display-Name": state.display_name,
        "Access-Control-Expose-Headers": _EXPOSED,
    }
    try:
        # Credentials first: nobody unknown gets to make the server buffer a body.
        user = state.auth.authenticate(credentials_of(request.headers, params))
        if request.method == "POST" and request.content_type == "multipart/form-data":
            params.update(await _form_fields(request, state.max_body_bytes))
            statement = params.get("query", "").encode()
        else:
            statement = await _statement(request, state, params)
        ctx, accept_compressed = _context(request, state, params, user)
        result = await execute(state.engine, ctx, statement)
    except ClickHouseError as exc:
        return _error(state, exc, headers)
    except Exception as exc:  # a bug here must still answer in ClickHouse's terms
        _log.exception("query %s failed", query_id)
        return _error(
            state, ClickHouseError(LOGICAL_ERROR, f"{type(exc).__name__}: {exc}"), headers
        )
    encoding = (
        choose_encoding(request.headers.get("Accept-Encoding")) if accept_compressed else None
    )
    return _success(result, headers, encoding)


def _context(
    request: web.Request, state: ServerState, params: dict[str, str], user: User
) -> tuple[QueryContext, bool]:
    request_params = split_params(params)
    session: HttpSession | None = None
    if params.get("session_id"):
        session = state.sessions.get(
            params["session_id"],
            user.name,
            params.get("session_timeout"),
            check=params.get("session_check", "0") not in ("0", "", "false"),
        )
    settings = {**(session.settings if session else {}), **request_params.settings}
    session_readonly = setting_value(settings.pop("readonly", None)) not in (None, "0", "")
    # GET is read-only on ClickHouse whatever the user may do: links and browsers
    # must never change data.
    writable = (
        user.may_write
        and request.method == "POST"
        and not request_params.read_only_requested
        and not session_readonly
    )
    database = (
        params.get("database")
        or request.headers.get("X-ClickHouse-Database")
        or (session.database if session else None)
        or "default"
    )
    default_format = (
        params.get("default_format")
        or request.headers.get("X-ClickHouse-Format")
        or setting_value(settings.get("default_format"))
        or DEFAULT_FORMAT
    )
    compression = setting_value(settings.get("enable_http_compression"))
    accept_compressed = (
        compression in ("1", "true")
        if compression is not None
        else state.info.http_compression_default
    )
    ctx = QueryContext(
        database=database,
        settings=settings,
        query_params=request_params.query_params,
        writable=writable,
        default_format=default_format,
        session=session,
    )
    return ctx, accept_compressed


async def _statement(request: web.Request, state: ServerState, params: dict[str, str]) -> bytes:
    """The statement text as ClickHouse sees it: `query` parameter, newline, body."""
    query = params.get("query", "").encode()
    if request.method != "POST":
        return query
    body = await _read_body(request, state.max_body_bytes)
    body = decompress_body(body, request.headers.get("Content-Encoding"))
    if query and body:
        return query + b"\n" + body
    return query or body


async def _form_fields(request: web.Request, limit: int) -> dict[str, str]:
    """`query` and `param_*` sent as multipart/form-data (clickhouse-connect does for
    long parameter lists); ClickHouse's external-data tables are not supported."""
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    fields: dict[str, str] = {}
    size = 0
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if part.filename is not None:
            raise ClickHouseError(
                NOT_IMPLEMENTED, "External data (files in multipart/form-data) is not supported"
            )
        value = await part.text()
        size += len(value)
        if size > limit:
            raise _too_large(limit)
        fields[part.name or ""] = value
    return fields


async def _read_body(request: web.Request, limit: int) -> bytes:
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    while chunk := await request.content.read(_CHUNK):
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> ClickHouseError:
    return ClickHouseError(
        QUERY_IS_TOO_LARGE, f"The request body is larger than the server's limit of {limit} bytes"
    )


def _success(result: Result, headers: dict[str, str], encoding: str | None) -> web.Response:
    outcome = result.outcome
    summary = {
        "read_rows": str(outcome.read_rows),
        "read_bytes": str(outcome.read_bytes),
        "written_rows": str(outcome.written_rows),
        "written_bytes": str(outcome.written_bytes),
        "total_rows_to_read": str(outcome.read_rows),
        "result_bytes": str(len(outcome.body)),
        "elapsed_ns": str(outcome.elapsed_ns),
    }
    headers = {
        **headers,
        "X-ClickHouse-Format": result.fmt,
        "X-ClickHouse-Summary": orjson.dumps(summary).decode(),
        "Content-Type": content_type(result.fmt),
    }
    body = outcome.body
    if encoding is not None and body:
        body = compress(body, encoding)
        headers["Content-Encoding"] = encoding
    return web.Response(body=body, headers=headers)


def _error(state: ServerState, exc: ClickHouseError, headers: dict[str, str]) -> web.Response:
    headers = {
        **headers,
        "X-ClickHouse-Exception-Code": str(exc.code),
        "Content-Type": "text/plain; charset=UTF-8",
    }
    if exc.http_status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="ClickHouse server HTTP API"'
    return web.Response(
        status=exc.http_status, body=exc.text(state.info.version).encode(), headers=headers
    )


async def _no_handler(request: web.Request) -> web.Response:
    text = (
        f"There is no handle {request.path}\n\n"
        "Use / or /ping for health checks.\n"
        "Send queries with POST or GET /?query=...\n"
    )
    return web.Response(status=404, text=text, charset="UTF-8")


def create_app(state: ServerState) -> web.Application:
    # No client_max_size: bodies are read (and bounded) by _read_body.
    app = web.Application(middlewares=[_same_site_only])
    app[_STATE] = state
    app.router.add_get("/ping", _ok)
    app.router.add_get("/replicas_status", _ok)
    app.router.add_get("/", _root_get)
    app.router.add_post("/", _query)
    app.router.add_route("*", "/{tail:.*}", _no_handler)
    return app
