"""The AI listener: an aiohttp app on the gateway's loop, reached only through the core."""

from __future__ import annotations

import logging
import socket
import time

import aiohttp
import orjson
from aiohttp import web

from pygate.ai.calllog import AiCallBuffer
from pygate.ai.chat import Renderer, run_chat
from pygate.ai.config import AiSettings
from pygate.ai.engine import Engine, EngineCounters
from pygate.ai.errors import AiError, openai_error
from pygate.ai.guard import came_through_core
from pygate.ai.messages import AnthropicRenderer, to_unified
from pygate.ai.providers.base import Unsupported
from pygate.ai.secrets import install_log_filter
from pygate.ai.secrets import remember as remember_secrets
from pygate.ai.service import AiService, read_json

log = logging.getLogger("pygate.ai")
SERVICE = web.AppKey("service", AiService)


@web.middleware
async def _only_through_core(request: web.Request, handler):
    if not came_through_core(request):
        error = AiError(403, "forbidden", "the AI listener only answers the gateway")
        return openai_error(error, request.headers.get("X-Request-Id", ""))
    return await handler(request)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        body = await read_json(request)
    except AiError as error:
        return openai_error(error, request.headers.get("X-Request-Id", ""))
    ctx = service.begin(request, "chat", str(body.get("model", "")), bool(body.get("stream")))
    return await run_chat(service, request, ctx, body, Renderer(body))


async def messages(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    try:
        raw = await read_json(request)
    except AiError as error:
        return AnthropicRenderer({}).error_response(error, request.headers.get("X-Request-Id", ""))
    body = to_unified(raw)
    ctx = service.begin(request, "messages", str(body.get("model") or ""), body["stream"])
    return await run_chat(service, request, ctx, body, AnthropicRenderer(raw))


async def embeddings(request: web.Request) -> web.Response:
    service = request.app[SERVICE]
    request_id = request.headers.get("X-Request-Id", "")
    try:
        body = await read_json(request)
    except AiError as error:
        return openai_error(error, request_id)
    ctx = service.begin(request, "embeddings", str(body.get("model", "")), False)
    try:
        plan = service.plan(body.get("model"))
        service.check_limits(ctx)
        _, result = await service.engine.embeddings(ctx.call, plan, body)
    except Unsupported as exc:
        error = AiError(400, "unsupported", str(exc))
        service.finish(ctx, body, None, 0, error)
        return openai_error(error, request_id)
    except AiError as error:
        service.finish(ctx, body, None, 0, error)
        return openai_error(error, request_id)
    from pygate.ai.service import usage_of

    usage = usage_of(result)
    if usage is not None and not usage.prompt_tokens:
        usage = None  # some providers report no tokens for embeddings: estimate
    service.finish(ctx, body, usage, 0)
    return web.json_response(result, dumps=lambda o: orjson.dumps(o).decode())


async def models(request: web.Request) -> web.Response:
    router = request.app[SERVICE].engine.router
    created = int(time.time())
    data = [
        {"id": name, "object": "model", "created": created, "owned_by": "pygate"}
        for name in router.model_names()
    ]
    return web.json_response({"object": "list", "data": data})


class AiGateway:
    """Owns the AI listener, the provider HTTP session and the ai_calls buffer."""

    def __init__(self, settings: AiSettings, sock: socket.socket, gateway_url: str) -> None:
        self.settings = settings
        self.gateway_url = gateway_url
        self.sock = sock
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
        app = web.Application(middlewares=[_only_through_core], client_max_size=64 * 1024**2)
        app[SERVICE] = self.service
        app.router.add_post("/v1/chat/completions", chat_completions)
        app.router.add_post("/v1/messages", messages)
        app.router.add_post("/v1/embeddings", embeddings)
        app.router.add_get("/v1/models", models)
        from pygate.ai.mcp import handle_mcp
        from pygate.ai.templates import handle_template

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
