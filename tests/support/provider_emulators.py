"""Model provider emulators on loopback, speaking each provider's real wire format.

One aiohttp server, one path prefix per provider (the prefix is the provider's
base_url): /openai, /mistral, /azure, /anthropic, /gemini, /compat (an OpenAI-compatible
server without usage in streams). Answers are deterministic: the reply repeats the last
user text; usage counts words (prompt: every message's words; completion: the
reply's words), so a test can predict tokens. With `tools`, the reply is a call of the
first tool with {"echo": <last user text>}.

Failures are queued per provider through the control endpoint and consumed by the
next matching requests (optionally only those made with one key):
    POST /_control/fail {"provider": "openai",
                         "mode": "429"|"500"|"midstream"|"hang"|"stall" (OpenAI family),
                         "count": 1, "key": null}
    GET  /_control/calls   -> every request seen: provider, key, model, stream
    POST /_control/reset
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
import uuid
from typing import Any

import orjson
from aiohttp import web


def _words(text: str) -> int:
    return len(text.split())


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    out = []
    for part in content or ():
        if isinstance(part, dict):
            out.append(part.get("text") or "")
            if isinstance(part.get("content"), str):
                out.append(part["content"])
    return " ".join(text for text in out if text)


class Emulator:
    def __init__(self) -> None:
        self.failures: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []

    # ----- control ---------------------------------------------------------------------
    async def fail(self, request: web.Request) -> web.Response:
        rule = await request.json()
        self.failures.append({"count": 1, "key": None, **rule})
        return web.json_response({"queued": len(self.failures)})

    async def list_calls(self, request: web.Request) -> web.Response:
        return web.json_response(self.calls)

    async def reset(self, request: web.Request) -> web.Response:
        self.failures.clear()
        self.calls.clear()
        return web.json_response({"ok": True})

    def take_failure(self, provider: str, key: str) -> str | None:
        for rule in self.failures:
            if rule["provider"] == provider and rule["key"] in (None, key) and rule["count"] > 0:
                rule["count"] -= 1
                return rule["mode"]
        return None

    def record(self, provider: str, key: str, model: str, stream: bool, kind: str) -> None:
        self.calls.append(
            {"provider": provider, "key": key, "model": model, "stream": stream, "kind": kind}
        )

    # ----- shared behaviour --------------------------------------------------------------
    @staticmethod
    def reply(messages: list[tuple[str, str]]) -> tuple[str, int]:
        last_user = next((text for role, text in reversed(messages) if role == "user"), "")
        prompt_words = sum(_words(text) for _, text in messages)
        return f"echo: {last_user}".strip(), prompt_words

    async def before(self, provider: str, key: str, stream: bool) -> str | None:
        """Apply a queued failure that acts before the answer; return "midstream" if due."""
        mode = self.take_failure(provider, key)
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode in ("429", "500"):
            raise _Failure(int(mode), key)
        return mode


class _Failure(Exception):
    def __init__(self, status: int, key: str) -> None:
        self.status = status
        self.key = key  # echoed in the message, as some real providers do with bad keys


def _error_body(provider: str, status: int, key: str = "") -> dict[str, Any]:
    message = "rate limit reached" if status == 429 else "internal server error"
    message += f" (request made with key {key})" if key else ""
    if provider == "anthropic":
        kind = "rate_limit_error" if status == 429 else "api_error"
        return {"type": "error", "error": {"type": kind, "message": message}}
    if provider == "gemini":
        state = "RESOURCE_EXHAUSTED" if status == 429 else "INTERNAL"
        return {"error": {"code": status, "message": message, "status": state}}
    kind = "rate_limit_exceeded" if status == 429 else "server_error"
    return {"error": {"message": message, "type": kind, "code": kind}}


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    return head + b"data: " + payload + b"\n\n"


def build_app(emulator: Emulator) -> web.Application:
    from support import emulator_formats as formats

    app = web.Application()
    app.router.add_post("/_control/fail", emulator.fail)
    app.router.add_get("/_control/calls", emulator.list_calls)
    app.router.add_post("/_control/reset", emulator.reset)
    formats.add_routes(app, emulator)
    return app


class EmulatorServer:
    """The emulators on a thread of the test process, on 127.0.0.1:<free port>."""

    def __init__(self) -> None:
        self.emulator = Emulator()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="emulators")

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(build_app(self.emulator), access_log=None)
        self._loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._runner = runner
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def start(self) -> EmulatorServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def base_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{provider}"

    def fail(self, provider: str, mode: str, count: int = 1, key: str | None = None) -> None:
        rule = {"provider": provider, "mode": mode, "count": count, "key": key}
        self._loop.call_soon_threadsafe(self.emulator.failures.append, rule)
        time.sleep(0.01)

    def reset(self) -> None:
        done = threading.Event()

        def clear() -> None:
            self.emulator.failures.clear()
            self.emulator.calls.clear()
            done.set()

        self._loop.call_soon_threadsafe(clear)
        done.wait(5)

    def calls(self) -> list[dict[str, Any]]:
        return list(self.emulator.calls)


def vector(text: str, dims: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 4) for b in digest[:dims]]


def new_id(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:20]}"
