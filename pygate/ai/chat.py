"""Chat answers over HTTP, streamed or not, in the caller's API format.

`respond` runs a chat call (call.py) and answers it; it is shared by
/v1/chat/completions (OpenAI format), /v1/messages (Anthropic format) and prompt
templates. A `Renderer` turns the unified answer and chunks into the caller's format;
`SseOut` writes a stream as server-sent events.
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from pygate.ai.call import CHAT, Call
from pygate.ai.engine import OpenStream
from pygate.ai.providers.base import StreamTranslator
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


async def respond(
    request: web.Request, call: Call, body: dict[str, Any], renderer: Renderer
) -> web.StreamResponse:
    """Answer one chat call; its AiError goes to the app's error middleware."""
    answer = await call.run(CHAT, body)
    if isinstance(answer, OpenStream):
        out = SseOut(request, renderer, call.headers())
        await call.relay(answer, out)
        return out.response
    return web.json_response(
        renderer.completion(answer),
        headers=call.headers(),
        dumps=lambda o: orjson.dumps(o).decode(),
    )


class SseOut:
    """A chat stream as server-sent events (call.py's `StreamSink`)."""

    def __init__(self, request: web.Request, renderer: Renderer, headers: dict[str, str]) -> None:
        self.request = request
        self.renderer = renderer
        sse = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        self.response = web.StreamResponse(headers={**sse, **headers})
        self.started = False

    async def prepare(self) -> None:
        await self.response.prepare(self.request)

    async def send(self, chunks: list[dict[str, Any]]) -> None:
        data = b"".join(self.renderer.chunk(c) for c in chunks)
        if not self.started:
            self.started = True
            data = self.renderer.start() + data
        if data:
            await self.response.write(data)

    async def end(self, translator: StreamTranslator) -> None:
        await self.response.write(self.renderer.usage(translator) + self.renderer.end())

    async def broke(self, message: str) -> None:
        try:
            await self.response.write(self.renderer.failure(message) + self.renderer.end())
        except ConnectionResetError:
            pass
