"""One chat call, streamed or not, rendered in the caller's API format.

`run_chat` is shared by /v1/chat/completions (OpenAI format), /v1/messages
(Anthropic format) and prompt templates; a `Renderer` turns the unified answer and
chunks into the caller's format.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pygate.ai.errors import AiError
from pygate.ai.providers.base import StreamError, StreamTranslator
from pygate.ai.service import (
    AiService,
    CallContext,
    completion_text_chars,
    usage_of,
)
from pygate.ai.sse import encode


class Renderer:
    """OpenAI's format: the unified format itself."""

    def __init__(self, body: dict[str, Any]) -> None:
        options = body.get("stream_options") or {}
        self.wants_usage = bool(options.get("include_usage"))
        self.sent_usage = False

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        return completion

    def start(self) -> bytes:
        return b""

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        if chunk.get("usage"):
            self.sent_usage = True
        if not chunk.get("choices") and not self.wants_usage:
            return b""  # the usage chunk we forced: the caller did not ask for it
        return encode(orjson.dumps(chunk))

    def usage(self, translator: StreamTranslator) -> bytes:
        """A usage chunk for callers who asked, when the provider's stream had none
        in OpenAI's shape (Anthropic and Gemini report usage in their own events)."""
        usage = translator.usage
        if not self.wants_usage or self.sent_usage or usage is None:
            return b""
        chunk = translator.chunk({})
        chunk["choices"] = []
        chunk["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        }
        return encode(orjson.dumps(chunk))

    def failure(self, message: str) -> bytes:
        error = {"message": message, "type": "provider_error", "code": "stream_interrupted"}
        return encode(orjson.dumps({"error": error}))

    def end(self) -> bytes:
        return encode(b"[DONE]")

    def error_response(self, error: AiError, request_id: str) -> web.Response:
        from pygate.ai.errors import openai_error

        return openai_error(error, request_id)


async def run_chat(
    service: AiService,
    request: web.Request,
    ctx: CallContext,
    body: dict[str, Any],
    renderer: Renderer,
) -> web.StreamResponse:
    """Answer one chat call; always writes its ai_calls row."""
    stream = bool(body.get("stream"))
    try:
        plan = service.plan(body.get("model"))
        service.check_limits(ctx)
    except AiError as error:
        service.finish(ctx, body, None, 0, error)
        return renderer.error_response(error, ctx.request_id)
    if stream:
        return await _streamed(service, request, ctx, body, plan, renderer)
    cache = service.cache
    cache_key = cache.key(ctx.consumer, "chat", body) if cache else ""
    completion = cache.get(cache_key) if cache else None
    try:
        if completion is not None:
            ctx.call.cache_hit = True
            ctx.call.provider, ctx.call.model = completion["_provider"], completion["model"]
        else:
            candidate, completion = await service.engine.chat(ctx.call, plan, body)
            completion["_provider"] = candidate.provider.name
            if cache:
                cache.put(cache_key, completion)
    except AiError as error:
        service.finish(ctx, body, None, 0, error)
        return renderer.error_response(error, ctx.request_id)
    answer = {k: v for k, v in completion.items() if k != "_provider"}
    service.finish(ctx, body, usage_of(answer), completion_text_chars(answer))
    return web.json_response(
        renderer.completion(answer), headers=_headers(ctx), dumps=lambda o: orjson.dumps(o).decode()
    )


async def _streamed(service, request, ctx, body, plan, renderer: Renderer) -> web.StreamResponse:
    try:
        opened = await service.engine.open_stream(ctx.call, plan, body)
    except AiError as error:
        service.finish(ctx, body, None, 0, error)
        return renderer.error_response(error, ctx.request_id)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", **_headers(ctx)}
    )
    failure: AiError | None = None
    try:
        await response.prepare(request)
        service.mark_first_byte(ctx)
        out = renderer.start()
        for chunk in opened.first_chunks:
            out += renderer.chunk(chunk)
        await response.write(out)
        # From here on nothing is retried: the caller has bytes.
        async for chunks in opened.rest:
            data = b"".join(renderer.chunk(c) for c in chunks)
            if data:
                await response.write(data)
        await response.write(renderer.usage(opened.translator) + renderer.end())
    except (StreamError, TimeoutError, aiohttp.ClientError, ValueError) as exc:
        message = str(exc) or type(exc).__name__  # AiError scrubs it
        failure = AiError(502, "stream_interrupted", f"the provider stream broke off: {message}")
        await _try_write(response, renderer.failure(failure.message) + renderer.end())
    except ConnectionResetError:
        failure = AiError(499, "client_closed", "the caller went away mid-stream")
    finally:
        opened.response.close()
        translator = opened.translator
        service.finish(ctx, body, translator.usage, translator.text_chars, failure)
    return response


async def _try_write(response: web.StreamResponse, data: bytes) -> None:
    try:
        await response.write(data)
    except ConnectionResetError:
        pass


def _headers(ctx: CallContext) -> dict[str, str]:
    headers = dict(ctx.limit_headers)
    call = ctx.call
    headers["X-Pygate-Model"] = f"{call.provider}/{call.model}"
    if call.fallback_used:
        headers["X-Pygate-Fallback"] = call.fallback_used
    if call.cache_hit:
        headers["X-Pygate-Cache"] = "hit"
    return headers
