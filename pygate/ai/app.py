"""The AI listener: an aiohttp app on the gateway's loop, reached only through the core."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pygate.ai.call import EMBEDDINGS, Call
from pygate.ai.calllog import AiCallBuffer
from pygate.ai.chat import Renderer, respond
from pygate.ai.engine import Engine, EngineCounters
from pygate.ai.errors import AiError, anthropic_error, openai_error
from pygate.ai.guard import INTERNAL_SECRET, came_through_core
from pygate.ai.messages import AnthropicRenderer, to_unified
from pygate.ai.request_shapes import check_chat, check_embeddings, check_messages
from pygate.ai.secrets import install_log_filter
from pygate.ai.secrets import remember as remember_secrets
from pygate.ai.service import AiService, read_json
from pygate.config.ai_schema import AiSettings

log = logging.getLogger("pygate.ai")
SERVICE = web.AppKey("service", AiService)
BODY_LIMIT = web.AppKey("body_limit", int)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# The fixed endpoints: path -> method -> handler (templates and /mcp come after).
def _endpoints() -> dict[str, dict[str, Handler]]:
    return {
        "/v1/chat/completions": {"POST": chat_completions},
        "/v1/messages": {"POST": messages},
        "/v1/embeddings": {"POST": embeddings},
        "/v1/models": {"GET": models},
        "/v1/models/{model:.+}": {"GET": model_by_name},
    }


def _renderer_for(request: web.Request) -> Callable[[AiError, str], web.Response]:
    return anthropic_error if request.path == "/v1/messages" else openai_error


@web.middleware
async def _gateway_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Everything the listener answers itself is the gateway's JSON error in the
    caller's API's shape: refusals, aiohttp's own errors (404, 405, 413) and crashes."""
    request_id = request.headers.get("X-Request-Id", "")
    try:
        if not came_through_core(request):
            raise AiError(403, "forbidden", "the AI listener only answers the gateway")
        return await handler(request)
    except AiError as error:
        return _renderer_for(request)(error, request_id)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _renderer_for(request)(_from_aiohttp(request, exc), request_id)
    except Exception:
        log.exception(
            "AI listener: %s %s (request %s) failed", request.method, request.path, request_id
        )
        error = AiError(
            500, "internal_error", f"the AI gateway failed; its log has request {request_id}"
        )
        return _renderer_for(request)(error, request_id)


def _from_aiohttp(request: web.Request, exc: web.HTTPException) -> AiError:
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allow = ", ".join(sorted(exc.allowed_methods - {"HEAD"}))
        message = f"{request.method} is not allowed on {request.path}; use {allow}"
        return AiError(405, "method_not_allowed", message, {"Allow": allow})
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        message = (
            f"the body is larger than the AI gateway's limit of {request.app[BODY_LIMIT]} bytes"
        )
        return AiError(413, "body_too_large", message)
    if isinstance(exc, web.HTTPNotFound):
        return AiError(404, "no_route", f"no AI endpoint at {request.path}")
    return AiError(exc.status, "bad_request", exc.reason)


def _wrong_method(allowed: list[str]) -> Handler:
    async def refuse(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return refuse


async def _no_server_banner(request: web.Request, response: web.StreamResponse) -> None:
    # Answers look like the gateway's own: no "Python/3.11 aiohttp/..." banner.
    response.headers.popall("Server", None)


async def _begin(
    request: web.Request, endpoint: str, check: Callable[[dict], None], streams: bool = True
) -> tuple[Call, dict[str, Any]]:
    """Read the body and begin its call; a body of the wrong shape is a recorded 400."""
    body = await read_json(request)
    streamed = streams and body.get("stream") is True
    call = request.app[SERVICE].begin(request, endpoint, _label(body.get("model")), streamed)
    with call.recorded():
        check(body)
    return call, body


async def chat_completions(request: web.Request) -> web.StreamResponse:
    call, body = await _begin(request, "chat", check_chat)
    return await respond(request, call, body, Renderer(body))


async def messages(request: web.Request) -> web.StreamResponse:
    call, raw = await _begin(request, "messages", check_messages)
    return await respond(request, call, to_unified(raw), AnthropicRenderer(raw))


async def embeddings(request: web.Request) -> web.Response:
    call, body = await _begin(request, "embeddings", check_embeddings, streams=False)
    result = await call.run(EMBEDDINGS, body)
    return web.json_response(result, dumps=lambda o: orjson.dumps(o).decode())


def _model_entry(name: str, created: int) -> dict:
    return {"id": name, "object": "model", "created": created, "owned_by": "pygate"}


async def models(request: web.Request) -> web.Response:
    router = request.app[SERVICE].engine.router
    created = int(time.time())
    data = [_model_entry(name, created) for name in router.model_names()]
    return web.json_response({"object": "list", "data": data})


async def model_by_name(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    name = request.match_info["model"]
    service.plan(name)  # 404 unknown_model, naming the known ones
    return web.json_response(_model_entry(name, int(time.time())))


def _label(model: object) -> str:
    return model if isinstance(model, str) else ""


class AiGateway:
    """Owns the AI listener, the provider HTTP session and the ai_calls buffer."""

    def __init__(
        self,
        settings: AiSettings,
        sock: socket.socket,
        secret: str,
        gateway_url: str,
        body_limit: int,
    ) -> None:
        self.settings = settings
        self.gateway_url = gateway_url
        self.sock = sock
        self.secret = secret  # what the core sends in the internal header (guard.py)
        self.body_limit = body_limit  # the core's limits.max_body_bytes: one limit, not two
        self.counters = EngineCounters()
        self.buffer = AiCallBuffer(settings.buffer)
        self.session: aiohttp.ClientSession | None = None
        self.service: AiService | None = None
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300)
        self.session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        remember_secrets(self.settings)
        install_log_filter()
        engine = Engine(self.settings, self.session, self.counters)
        self.service = AiService(self.settings, engine, self.buffer)
        self.service.gateway_url = self.gateway_url
        app = web.Application(middlewares=[_gateway_errors], client_max_size=self.body_limit)
        app[SERVICE] = self.service
        app[INTERNAL_SECRET] = self.secret
        app[BODY_LIMIT] = self.body_limit
        app.on_response_prepare.append(_no_server_banner)
        for path, methods in _endpoints().items():
            for method, handler in methods.items():
                app.router.add_route(method, path, handler)
                if method == "GET":
                    app.router.add_route("HEAD", path, handler)
            # Any other method: 405 here, not the template catch-all below.
            app.router.add_route("*", path, _wrong_method(list(methods)))
        from pygate.ai.mcp import handle_mcp
        from pygate.ai.template_handler import handle_template

        app.router.add_route("*", "/mcp", handle_mcp)
        app.router.add_post("/{path:.*}", handle_template)
        self.runner = web.AppRunner(app, access_log=None, handler_cancellation=False)
        await self.runner.setup()
        await web.SockSite(self.runner, self.sock).start()

    def reload(self, settings: AiSettings) -> None:
        """New providers, aliases, prices, limits and templates; calls in flight finish
        with the objects they started with."""
        self.settings = settings
        remember_secrets(settings)
        if self.service is not None and self.session is not None:
            self.service.reconfigure(settings, Engine(settings, self.session, self.counters))

    def seed_limits(self, rows: list[list]) -> None:
        if self.service is not None:
            self.service.limits.seed(rows)

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
        if self.session is not None:
            await self.session.close()
