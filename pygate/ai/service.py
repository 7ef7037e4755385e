"""What every AI endpoint shares: the call record, limits, cache and accounting."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from pygate.ai.accounting import PriceTable, estimated_usage
from pygate.ai.cache import ResponseCache
from pygate.ai.calllog import AiCall, AiCallBuffer
from pygate.ai.engine import Engine
from pygate.ai.errors import AiError
from pygate.ai.limits import Limits
from pygate.ai.providers.base import Usage
from pygate.config.ai_schema import AiSettings


@dataclass(slots=True)
class CallContext:
    call: AiCall
    started: float  # time.monotonic()
    request_id: str
    consumer: str
    limit_headers: dict[str, str]


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
        cache = settings.cache
        if cache is None:
            self.cache = None
        elif self.cache is None:
            self.cache = ResponseCache(cache.ttl / 1000, cache.max_entries)
        else:
            self.cache.ttl_s, self.cache.max_entries = cache.ttl / 1000, cache.max_entries

    def begin(self, request: web.Request, endpoint: str, alias: str, streamed: bool) -> CallContext:
        consumer = request.headers.get("X-Consumer-Username", "")
        request_id = request.headers.get("X-Request-Id", "")
        call = AiCall(
            request_id=request_id,
            consumer=consumer,
            alias=alias,
            endpoint=endpoint,
            streamed=streamed,
            started=time.time(),
        )
        return CallContext(call, time.monotonic(), request_id, consumer, {})

    def check_shape(
        self, ctx: CallContext, body: dict[str, Any], check: Callable[[dict[str, Any]], None]
    ) -> None:
        """Run a request_shapes check; its 400 is recorded like any other failed call."""
        try:
            check(body)
        except AiError as error:
            self.finish(ctx, body, None, 0, error)
            raise

    def check_limits(self, ctx: CallContext) -> None:
        ctx.limit_headers = self.limits.check(ctx.consumer, ctx.call.alias)

    def plan(self, model: Any):
        from pygate.ai.router import UnknownModel

        if not isinstance(model, str) or not model:
            raise AiError(400, "bad_request", '"model" is required: an alias or provider/model')
        try:
            return self.engine.router.plan(model)
        except UnknownModel:
            known = ", ".join(self.engine.router.model_names()) or "none configured"
            raise AiError(
                404, "unknown_model", f"unknown model {model!r}; models: {known}"
            ) from None

    def mark_first_byte(self, ctx: CallContext) -> None:
        ctx.call.ttft_ms = (time.monotonic() - ctx.started) * 1000

    def finish(
        self,
        ctx: CallContext,
        body: dict[str, Any],
        usage: Usage | None,
        completion_chars: int,
        error: AiError | None = None,
    ) -> None:
        """Account for the call (tokens, cost, limits) and queue its ai_calls row."""
        call = ctx.call
        call.latency_ms = (time.monotonic() - ctx.started) * 1000
        if not call.streamed and not call.ttft_ms:
            call.ttft_ms = call.latency_ms
        if error is not None:
            call.status = error.status
            call.error = f"{error.kind}: {error.message}"[:2000]
        # A provider answered (or streamed part of an answer) but sent no usage: estimate.
        answered = (call.attempts > 0 and call.status < 400) or completion_chars > 0
        if usage is None and answered:
            usage = estimated_usage(body, completion_chars)
            call.tokens_estimated = True
        if usage is not None:
            call.prompt_tokens, call.completion_tokens = (
                usage.prompt_tokens,
                usage.completion_tokens,
            )
            if not call.cache_hit:
                call.cost_usd = self.prices.cost(f"{call.provider}/{call.model}", usage)
        self.limits.charge(
            ctx.consumer, call.alias, call.prompt_tokens + call.completion_tokens, call.cost_usd
        )
        self.buffer.add(call)


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


def usage_of(completion: dict[str, Any]) -> Usage | None:
    usage = completion.get("usage")
    if not usage:
        return None
    return Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))


def completion_text_chars(completion: dict[str, Any]) -> int:
    total = 0
    for choice in completion.get("choices", []):
        message = choice.get("message") or {}
        total += len(message.get("content") or "")
        for call in message.get("tool_calls") or ():
            total += len(call.get("function", {}).get("arguments") or "")
    return total
