#!/usr/bin/env python3
"""A fast OpenAI-compatible mock provider for benchmarks/ai_vs_litellm.py.

    python benchmarks/ai_mock.py PORT

POST /v1/chat/completions answers a fixed completion (with usage) at once, or, with
"stream": true, five content chunks, a usage chunk and [DONE], written back to back:
whatever time a client sees beyond the direct call is the gateway's.
"""

from __future__ import annotations

import sys
import time

import orjson
from aiohttp import web

REPLY = ["Hello", " from", " the", " mock", "."]
USAGE = {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


async def chat(request: web.Request) -> web.StreamResponse:
    body = orjson.loads(await request.read())
    base = {"id": "chatcmpl-bench", "created": int(time.time()), "model": body.get("model", "m")}
    if not body.get("stream"):
        message = {"role": "assistant", "content": "".join(REPLY)}
        answer = {
            **base,
            "object": "chat.completion",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
            "usage": USAGE,
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for piece in REPLY:
        choice = {"index": 0, "delta": {"content": piece}, "finish_reason": None}
        chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
        await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")
    usage = {**base, "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
    await response.write(b"data: " + orjson.dumps(usage) + b"\n\ndata: [DONE]\n\n")
    return response


def main() -> None:
    import uvloop

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    uvloop.install()
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), access_log=None, print=None)


if __name__ == "__main__":
    main()
