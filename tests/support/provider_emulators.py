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
                         "count": 1, "key": null, "retry_after": "1"}

Keys are refused as a real provider refuses a revoked or unauthorised key, always:
`revoked-...` gets 401 (Gemini: 400 INVALID_ARGUMENT / API_KEY_INVALID, as Google
answers), `forbidden-...` 403, `revoked-html-...` 401 with an HTML page. The error
text echoes the key in the forms error pages and proxies show it (plain, URL-encoded,
in a `key=` query string, inside `Basic` credentials), so tests can check scrubbing.
    GET  /_control/calls   -> every request seen: provider, key, model, stream
    POST /_control/reset
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import threading
import time
import uuid
from typing import Any
from urllib.parse import quote, quote_plus

import orjson
from aiohttp import web

REVOKED, FORBIDDEN, REVOKED_HTML = "revoked-", "forbidden-", "revoked-html-"


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

    def take_failure(self, provider: str, key: str) -> dict[str, Any] | None:
        for rule in self.failures:
            if rule["provider"] == provider and rule["key"] in (None, key) and rule["count"] > 0:
                rule["count"] -= 1
                return rule
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
        """Refuse a revoked key; apply a queued failure that acts before the answer;
        return the mode ("midstream", "stall") if it acts later."""
        if key.startswith(FORBIDDEN):
            raise _Failure(403, key)
        if key.startswith(REVOKED):
            raise _Failure(401, key)
        rule = self.take_failure(provider, key)
        mode = rule["mode"] if rule else None
        if mode == "hang":
            await asyncio.sleep(3600)
        if mode in ("429", "500"):
            raise _Failure(int(mode), key, rule.get("retry_after") or "1")
        return mode


class _Failure(Exception):
    def __init__(self, status: int, key: str, retry_after: str = "1") -> None:
        self.status = status
        self.key = key  # echoed in the message, as some real providers do with bad keys
        self.retry_after = retry_after


def failure_response(provider: str, failure: _Failure) -> web.Response:
    """The provider's answer to a refused key, a rate limit or a server error."""
    headers = {"Retry-After": failure.retry_after} if failure.status == 429 else {}
    if failure.key.startswith(REVOKED_HTML):
        # A provider's front proxy answering with a page; the key sits across the first
        # 500 characters, where a naive "truncate, then scrub" would cut it in two.
        page = "<html><body>" + "x" * 470 + f" bad key {failure.key}</body></html>"
        return web.Response(text=page, status=401, content_type="text/html")
    if failure.status in (401, 403):
        status, body = _refusal_body(provider, failure.status, failure.key)
        return web.json_response(body, status=status)
    body = _error_body(provider, failure.status, failure.key)
    return web.json_response(body, status=failure.status, headers=headers)


def _refusal_body(provider: str, status: int, key: str) -> tuple[int, dict[str, Any]]:
    basic = base64.b64encode(f"api:{key}".encode()).decode()
    echoed = (
        f"Incorrect API key provided: {key}. Seen as {quote(key, safe='')} in "
        f"POST /v1/x?key={quote_plus(key)}&alt=sse with Authorization: Basic {basic}"
    )
    if provider == "anthropic":
        kind = "authentication_error" if status == 401 else "permission_error"
        return status, {"type": "error", "error": {"type": kind, "message": echoed}}
    if provider == "gemini":
        if status == 403:
            error = {"code": 403, "message": echoed, "status": "PERMISSION_DENIED"}
            return 403, {"error": error}
        reason = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}
        error = {"code": 400, "message": echoed, "status": "INVALID_ARGUMENT", "details": [reason]}
        return 400, {"error": error}
    code = "invalid_api_key" if status == 401 else "unsupported_country_region_territory"
    return status, {"error": {"message": echoed, "type": "invalid_request_error", "code": code}}


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


async def echoing_mcp_server(request: web.Request) -> web.Response:
    """An MCP server (JSON answers, no session) that refuses every tool request with an
    error quoting the Authorization header it got, as a misbehaving server might."""
    message = await request.json()
    if "id" not in message:
        return web.Response(status=202)
    if message.get("method") == "initialize":
        result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}
        return web.json_response({"jsonrpc": "2.0", "id": message["id"], "result": result})
    seen = request.headers.get("Authorization", "")
    error = {"code": -32001, "message": f"not allowed with Authorization: {seen}"}
    return web.json_response({"jsonrpc": "2.0", "id": message["id"], "error": error})


def build_app(emulator: Emulator) -> web.Application:
    from support import emulator_formats as formats

    app = web.Application()
    app.router.add_post("/mcp-echo", echoing_mcp_server)
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

    def fail(
        self,
        provider: str,
        mode: str,
        count: int = 1,
        key: str | None = None,
        retry_after: str | None = None,
    ) -> None:
        rule = {
            "provider": provider,
            "mode": mode,
            "count": count,
            "key": key,
            "retry_after": retry_after,
        }
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
