"""The AI gateway's state that calls share (engine, limits, cache, prices, the ai_calls
buffer), swapped on reload; and where a call begins (`begin`, see call.py)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from aiohttp import web

from pygate.ai import tokens
from pygate.ai.accounting import PriceTable
from pygate.ai.cache import ResponseCache
from pygate.ai.call import Call
from pygate.ai.calllog import AiCall, AiCallBuffer
from pygate.ai.engine import Engine
from pygate.ai.errors import AiError
from pygate.ai.limits import Limits
from pygate.ai.router import Candidate, UnknownModel
from pygate.config.ai_schema import AiSettings


class AiService:
    def __init__(self, settings: AiSettings, engine: Engine, buffer: AiCallBuffer) -> None:
        self.buffer = buffer
        self.gateway_url = ""  # where MCP route tools call the gateway's own routes
        self.mcp_sessions: dict = {}  # upstream MCP server name -> its session
        self.cache: ResponseCache | None = None
        self.limits = Limits([])
        self.reconfigure(settings, engine)

    def reconfigure(self, settings: AiSettings, engine: Engine) -> None:
        """Apply a (re)loaded `ai:` section; usage counters and cached answers stay."""
        self.settings = settings
        self.engine = engine
        self.prices = PriceTable(settings.prices)
        self.limits = self.limits.reconfigured(settings.limits)
        self.templates = {str(t.path): t for t in settings.templates}
        deployments = [d.model for a in settings.models for d in a.deployments]
        tokens.warm_up([name.partition("/")[2] for name in deployments])
        cache = settings.cache
        if cache is None:
            self.cache = None
        elif self.cache is None:
            self.cache = ResponseCache(cache.ttl / 1000, cache.max_entries)
        else:
            self.cache.ttl_s, self.cache.max_entries = cache.ttl / 1000, cache.max_entries

    def begin(self, request: web.Request, endpoint: str, alias: str, streamed: bool) -> Call:
        """A call's first phase: who asks (the consumer the core identified), under which
        request id, for which endpoint and alias; see call.py for the rest."""
        row = AiCall(
            request_id=request.headers.get("X-Request-Id", ""),
            consumer=request.headers.get("X-Consumer-Username", ""),
            alias=alias,
            endpoint=endpoint,
            streamed=streamed,
            started=time.time(),
        )
        return Call(self, row)

    def plan(self, model: Any) -> list[Candidate]:
        if not isinstance(model, str) or not model:
            raise AiError(400, "bad_request", '"model" is required: an alias or provider/model')
        try:
            return self.engine.router.plan(model)
        except UnknownModel:
            known = ", ".join(self.engine.router.model_names()) or "none configured"
            raise AiError(
                404, "unknown_model", f"unknown model {model!r}; models: {known}"
            ) from None


async def read_json(request: web.Request) -> dict[str, Any]:
    """The request's JSON object. Only JSON is read: a form or text/plain body (what a
    cross-site page can send without asking) gets 415, whatever it holds."""
    content_type = request.headers.get("Content-Type", "")
    media = content_type.partition(";")[0].strip().lower()
    if media != "application/json" and not (
        media.startswith("application/") and media.endswith("+json")
    ):
        shown = repr(content_type) if content_type else "none"
        message = f"send the body as Content-Type: application/json (got {shown})"
        raise AiError(415, "unsupported_media_type", message)
    raw = await request.read()
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise AiError(400, "bad_request", f"the body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise AiError(400, "bad_request", "the body must be a JSON object")
    return body
