"""Anthropic and Gemini wire formats of the provider emulators (see provider_emulators.py)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from support.emulator_formats import STREAM_HEADERS, _guard, _pieces
from support.provider_emulators import Emulator, _error_body, _text, _words, new_id, sse, vector


# ----- Anthropic ----------------------------------------------------------------------------
def anthropic(emulator: Emulator):
    @_guard("anthropic")
    async def messages(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-api-key", "")
        if not key or not request.headers.get("anthropic-version"):
            return web.json_response(_error_body("anthropic", 401), status=401)
        body = await request.json()
        model, stream = body.get("model", ""), bool(body.get("stream"))
        emulator.record("anthropic", key, model, stream, "chat")
        if not body.get("max_tokens"):
            return web.json_response(
                {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "max_tokens: required"},
                },
                status=400,
            )
        mode = await emulator.before("anthropic", key, stream)
        messages = [("system", body["system"])] if body.get("system") else []
        messages += [(m["role"], _text(m["content"])) for m in body["messages"]]
        reply, prompt_tokens = emulator.reply(messages)
        tool = (body.get("tools") or [None])[0]
        usage = {"input_tokens": prompt_tokens, "output_tokens": _words(reply)}
        block = (
            {
                "type": "tool_use",
                "id": new_id("toolu_"),
                "name": tool["name"],
                "input": {"echo": messages[-1][1]},
            }
            if tool
            else {"type": "text", "text": reply}
        )
        stop = "tool_use" if tool else "end_turn"
        message = {
            "id": new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": model,
            "stop_sequence": None,
        }
        if not stream:
            return web.json_response(
                {**message, "content": [block], "stop_reason": stop, "usage": usage}
            )
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)

        async def event(kind: str, payload: dict) -> None:
            await response.write(sse({"type": kind, **payload}, kind))

        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": prompt_tokens, "output_tokens": 1},
        }
        await event("message_start", {"message": start})
        await event("ping", {})
        if tool:
            await event(
                "content_block_start", {"index": 0, "content_block": {**block, "input": {}}}
            )
            import orjson

            args = orjson.dumps(block["input"]).decode()
            for part in (args[: len(args) // 2], args[len(args) // 2 :]):
                await event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "input_json_delta", "partial_json": part}},
                )
        else:
            await event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
            for n, piece in enumerate(_pieces(reply)):
                if mode == "midstream" and n == 2:
                    await event(
                        "error",
                        {"error": {"type": "api_error", "message": f"overloaded (key {key})"}},
                    )
                    return response
                await event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
        await event("content_block_stop", {"index": 0})
        await event(
            "message_delta",
            {
                "delta": {"stop_reason": stop, "stop_sequence": None},
                "usage": {"output_tokens": usage["output_tokens"]},
            },
        )
        await event("message_stop", {})
        return response

    return messages


# ----- Gemini ---------------------------------------------------------------------------------
def gemini(emulator: Emulator):
    @_guard("gemini")
    async def call(request: web.Request) -> web.StreamResponse:
        key = request.headers.get("x-goog-api-key", "")
        if not key:
            return web.json_response(_error_body("gemini", 401), status=401)
        model, _, method = request.match_info["target"].partition(":")
        body = await request.json()
        if method == "batchEmbedContents":
            emulator.record("gemini", key, model, False, "embeddings")
            await emulator.before("gemini", key, False)
            texts = [_text(r["content"]["parts"]) for r in body["requests"]]
            return web.json_response({"embeddings": [{"values": vector(t)} for t in texts]})
        stream = method == "streamGenerateContent"
        emulator.record("gemini", key, model, stream, "chat")
        mode = await emulator.before("gemini", key, stream)
        messages = []
        if body.get("systemInstruction"):
            messages.append(("system", _text(body["systemInstruction"]["parts"])))
        for content in body["contents"]:
            messages.append(
                ("user" if content["role"] == "user" else "assistant", _text(content["parts"]))
            )
        reply, prompt_tokens = emulator.reply(messages)
        usage = {
            "promptTokenCount": prompt_tokens,
            "candidatesTokenCount": _words(reply),
            "totalTokenCount": prompt_tokens + _words(reply),
        }
        tools = body.get("tools") or []
        if tools:
            name = tools[0]["functionDeclarations"][0]["name"]
            parts = [{"functionCall": {"name": name, "args": {"echo": messages[-1][1]}}}]
        else:
            parts = [{"text": reply}]

        def answer(parts: list, finish: str | None, with_usage: bool) -> dict:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish:
                candidate["finishReason"] = finish
            out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model}
            if with_usage:
                out["usageMetadata"] = usage
            return out

        if not stream:
            return web.json_response(answer(parts, "STOP", True))
        if request.query.get("alt") != "sse":
            return web.json_response(
                {"error": {"message": "emulator speaks alt=sse only"}}, status=400
            )
        response = web.StreamResponse(headers=STREAM_HEADERS)
        await response.prepare(request)
        pieces = [parts] if tools else [[{"text": p}] for p in _pieces(reply)]
        for n, piece in enumerate(pieces):
            if mode == "midstream" and n == 2:
                await response.write(
                    sse(
                        {
                            "error": {
                                "code": 500,
                                "message": "internal server error",
                                "status": "INTERNAL",
                            }
                        }
                    )
                )
                return response
            last = n == len(pieces) - 1
            await response.write(sse(answer(piece, "STOP" if last else None, last)))
        return response

    return call
