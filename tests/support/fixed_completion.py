"""An OpenAI-format provider on loopback that never reports usage.

It answers every chat call with the same fixed text (JSON, or SSE in pieces cut mid-word,
with no usage chunk even when `stream_options.include_usage` asks for one: some
OpenAI-compatible servers do that) and every embeddings call without `usage`, so the
gateway must count the tokens itself. It records each call's model, for tests that check
a refused call never reached it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
from aiohttp import web

ANSWER = "The capital of France is Paris. It has been the country's capital since the 10th century."
# Cut mid-word: a count of the pieces one by one would differ from the count of the text.
PIECES = ["The capi", "tal of Fr", "ance is Par", "is. It has been the coun", "try's capital",
          " since the 10", "th century."]  # fmt: skip
assert "".join(PIECES) == ANSWER


class FixedCompletion:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="fixed-completion")

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.calls.append({"model": body.get("model"), "stream": bool(body.get("stream"))})
        base = {"id": "chatcmpl-fixed", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            message = {"role": "assistant", "content": ANSWER}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            return web.json_response({**base, "object": "chat.completion", "choices": [choice]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)

        async def send(delta: dict[str, Any], finish: str | None = None) -> None:
            choice = {"index": 0, "delta": delta, "finish_reason": finish}
            chunk = {**base, "object": "chat.completion.chunk", "choices": [choice]}
            await response.write(b"data: " + orjson.dumps(chunk) + b"\n\n")

        await send({"role": "assistant", "content": ""})
        for piece in PIECES:
            await send({"content": piece})
        await send({}, "stop")
        await response.write(b"data: [DONE]\n\n")
        return response

    async def _embeddings(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.calls.append({"model": body.get("model"), "stream": False})
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        data = [
            {"object": "embedding", "index": i, "embedding": [0.5, 0.5]} for i in range(len(inputs))
        ]
        return web.json_response({"object": "list", "data": data, "model": body["model"]})

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application(client_max_size=64 * 1024 * 1024)  # padded prompts too
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> FixedCompletion:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the fixed-completion provider did not start")
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
