"""What every admin API handler shares: the service, the caller, bodies and answers."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from aiohttp import web

from pygate.config.secrets import FINGERPRINT
from pygate.server.admin_api.audit import Who
from pygate.server.admin_api.errors import ApiError, invalid_at
from pygate.server.admin_api.service import AdminService

log = logging.getLogger("pygate")

SERVICE = web.AppKey("admin_api.service", AdminService)
# Set by the admin listener's token check (pygate/server/admin_listener.py): who is calling.
ACTOR_KEY = "pygate.actor"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def service(request: web.Request) -> AdminService:
    return request.app[SERVICE]


def who(request: web.Request) -> Who:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    client = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) and len(peer) >= 2 else ""
    path = request.path
    key = request.match_info.get("key")
    if key:  # DELETE /consumers/{name}/keys/{key}: the audit log and the log get no key
        shown = key if FINGERPRINT.match(key) else service(request).fingerprints.of(key)
        path = path.rsplit("/", 1)[0] + "/" + shown
    return Who(
        actor=request.get(ACTOR_KEY, "anonymous"),
        client=client,
        request=f"{request.method} {path}",
    )


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def no_content() -> web.Response:
    return web.Response(status=204)


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The request body as JSON; an empty body is None when `optional`."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise invalid_at((), "expected a JSON body")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise invalid_at((), f"invalid JSON: {exc}") from exc


async def read_object(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise invalid_at((), "expected a JSON object")
    return body


def api_errors(handler: Handler) -> Handler:
    """Answer ApiError as its JSON body (decorates each admin API handler)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return json_response(exc.body, exc.status)
        except Exception as exc:
            log.exception("admin API: %s %s failed", request.method, request.path)
            # Not the exception's text: it may quote the document, secrets and all.
            message = f"{type(exc).__name__} while answering; see the gateway's log"
            return json_response({"error": "internal", "message": message}, 500)

    wrapped.__name__ = handler.__name__
    wrapped.__doc__ = handler.__doc__
    return wrapped
