"""The wire formats of the provider emulators (see provider_emulators.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web

from support.provider_emulators import (
    Emulator,
    _Failure,
    _text,
    _words,
    failure_response,
    new_id,
    sse,
    vector,
)

STREAM_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}


def _pieces(reply: str) -> list[str]:
    words = reply.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _guard(provider: str):
    def wrap(handler):
        async def run(request: web.Request) -> web.StreamResponse:
            try:
                return await handler(request)
            except _Failure as failure:
                return failure_response(provider, failure)

        return run

    return wrap


# ----- OpenAI family: openai, mistral, compat, azure ------------------------------------
def openai_family(emulator: Emulator, provider: str):
    @_guard(provider)
    async def chat(request: web.Request) -> web.StreamResponse:
        if provider == "azure":
            key = request.headers.get("api-key", "")
            if not request.query.get("api-version"):
                return web.json_response({"error": {"message": "api-version missing"}}, status=404)
        else:
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        if not key and provider != "compat":
            return web.json_response({"error": {"message": "no key"}}, status=401)
        body = await request.json()
        model = request.match_info.get("deployment") or body.get("model", "")
        stream = bool(body.get("stream"))
        emulator.record(provider, key, model, stream, "chat")
        if provider == "mistral" and "stream_options" in body:
            return web.json_response({"message": "stream_options: extra fields"}, status=422)
        mode = await emulator.before(provider, key, stream)
        messages = [(m["role"], _text(m.get("content"))) for m in body.get("messages", [])]
        reply, prompt_tokens = emulator.reply(messages)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": _words(reply),
            "total_tokens": prompt_tokens + _words(reply),
        }
        tool = (body.get("tools") or [None])[0]
        call = None
        if tool:
            last = messages[-1][1] if messages else ""
            arguments = '{"echo": "' + last.replace('"', "'") + '"}'
            name = tool["function"]["name"]
            call = {
                "id": new_id("call_"),
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        base = {"id": new_id("chatcmpl-"), "created": int(time.time()), "model": model}
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": None if call else reply}
            if call:
                message["tool_calls"] = [call]
            finish = "tool_calls" if call else "stop"
            choice = {"index": 0, "message": message, "finish_reason": finish}
            return web.json_response(
                {**base, "object": "chat.completion", "choices": [choice], "usage": usage}
            )
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)

        def chunk(delta: dict, finish: str | None = None, **extra: Any) -> bytes:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            return sse({**base, "object": "chat.completion.chunk", "choices": [choice], **extra})

        await response.write(chunk({"role": "assistant", "content": ""}))
        if call:
            head = {
                **call,
                "index": 0,
                "function": {"name": call["function"]["name"], "arguments": ""},
            }
            await response.write(chunk({"tool_calls": [head]}))
            args = call["function"]["arguments"]
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                await response.write(
                    chunk({"tool_calls": [{"index": 0, "function": {"arguments": part}}]})
                )
        else:
            for n, piece in enumerate(_pieces(reply)):
                if mode == "stall" and n == 2:
                    await asyncio.sleep(3600)  # the stream goes quiet after two chunks
                if mode == "midstream" and n == 2:
                    await response.write(
                        sse(
                            {
                                "error": {
                                    "message": f"internal server error (key {key})",
                                    "type": "server_error",
                                }
                            }
                        )
                    )
                    return response
                await response.write(chunk({"content": piece}))
        finish = "tool_calls" if call else "stop"
        if provider == "mistral":
            await response.write(chunk({}, finish, usage=usage))
        else:
            await response.write(chunk({}, finish))
            options = body.get("stream_options") or {}
            if provider in ("openai", "azure") and options.get("include_usage"):
                await response.write(
                    sse({**base, "object": "chat.completion.chunk", "choices": [], "usage": usage})
                )
        await response.write(sse(b"[DONE]"))
        return response

    @_guard(provider)
    async def embeddings(request: web.Request) -> web.Response:
        key = request.headers.get("api-key") or request.headers.get(
            "Authorization", ""
        ).removeprefix("Bearer ")
        body = await request.json()
        model = request.match_info.get("deployment") or body.get("model", "")
        emulator.record(provider, key, model, False, "embeddings")
        await emulator.before(provider, key, False)
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        if all(isinstance(token, int) for token in inputs):
            inputs = [inputs]  # one array of tokens
        # Token arrays (OpenAI accepts them): one "word" per token.
        inputs = [t if isinstance(t, str) else " ".join(map(str, t)) for t in inputs]
        tokens = sum(_words(t) for t in inputs)
        data = [
            {"object": "embedding", "index": i, "embedding": vector(t)}
            for i, t in enumerate(inputs)
        ]
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})

    return chat, embeddings


def add_routes(app: web.Application, emulator: Emulator) -> None:
    from support.emulator_formats_more import anthropic, gemini

    for provider in ("openai", "mistral", "compat"):
        chat, embeddings = openai_family(emulator, provider)
        app.router.add_post(f"/{provider}/v1/chat/completions", chat)
        app.router.add_post(f"/{provider}/v1/embeddings", embeddings)
    chat, embeddings = openai_family(emulator, "azure")
    app.router.add_post("/azure/openai/deployments/{deployment}/chat/completions", chat)
    app.router.add_post("/azure/openai/deployments/{deployment}/embeddings", embeddings)
    app.router.add_post("/anthropic/v1/messages", anthropic(emulator))
    app.router.add_post("/gemini/v1beta/models/{target}", gemini(emulator))
