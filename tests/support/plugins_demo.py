"""Python plugins the tests load by module path ("support.plugins_demo:Name").

The gateway subprocess imports this module itself: the tests put tests/ on its
PYTHONPATH. Each plugin leaves a visible trace (a header the echo upstream reports, a
changed response, a line in a file) so the tests can tell that it ran and in what order.
"""

from __future__ import annotations

import asyncio
import json

import msgspec

from pygate.plugins.python import Plugin, Request, Response


class RewriteConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    header: str = "X-Demo"
    value: str
    arg: str | None = None  # query argument set to `value`
    json_field: str | None = None  # field set to `value` in a JSON request body
    path_prefix: str | None = None  # prepended to the path


class Rewrite(Plugin):
    """Access: change a header, the query, the path and a JSON body field."""

    Config = RewriteConfig

    async def access(self, request: Request) -> Response | None:
        c = self.config
        request.headers[c.header] = c.value
        if c.arg is not None:
            request.args[c.arg] = [c.value]
        if c.path_prefix is not None:
            request.path = c.path_prefix + request.path
        if c.json_field is not None and request.body:
            doc = request.json()
            doc[c.json_field] = c.value
            request.set_json(doc)
        # Seen by the next plugin of this phase (ctx is shared within a phase).
        request.ctx.setdefault("order", []).append(c.value)
        return None


class Order(Plugin):
    """Access: report which earlier plugins ran (through ctx) in a header."""

    async def access(self, request: Request) -> None:
        request.headers["X-Order"] = ",".join(request.ctx.get("order", []))


async def require_token(request: Request) -> Response | None:
    """A plain async function: answer 403 directly unless X-Demo-Token is "letmein"."""
    if request.headers.get("x-demo-token") != "letmein":
        return Response(
            403,
            headers={"X-Refused-By": "require_token"},
            json={"refused": request.path, "consumer": request.consumer},
        )
    return None


class SwitchUpstreamConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    upstream: str


class SwitchUpstream(Plugin):
    """Access: send requests carrying `X-Canary: 1` to another upstream."""

    Config = SwitchUpstreamConfig

    async def access(self, request: Request) -> None:
        if request.headers.get("X-Canary") == "1":
            request.upstream = self.config.upstream


class ShapeConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: int | None = None
    header: str = "X-Shaped"


class Shape(Plugin):
    """Response: change the status, add a header, add a field to a JSON body."""

    Config = ShapeConfig

    async def response(self, request: Request, response: Response) -> None:
        if self.config.status is not None:
            response.status = self.config.status
        response.headers[self.config.header] = f"{request.method} {request.path}"
        if response.body is None:
            response.headers["X-Body"] = "streamed"
            return
        doc = response.json()
        doc["shaped_by"] = "Shape"
        doc.pop("headers", None)
        response.set_json(doc)


class RecordToFileConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    path: str


class RecordToFile(Plugin):
    """Log: append each finished call record to a file, one JSON object a line."""

    Config = RecordToFileConfig

    async def log(self, record: dict) -> None:
        with open(self.config.path, "a") as f:
            f.write(json.dumps(record) + "\n")


class Raiser(Plugin):
    async def access(self, request: Request) -> None:
        raise RuntimeError("boom from the demo plugin")


class RaiseInResponse(Plugin):
    async def response(self, request: Request, response: Response) -> None:
        raise ValueError("the response plugin broke")


class Hang(Plugin):
    async def access(self, request: Request) -> None:
        await asyncio.sleep(3600)


class NotAPlugin:
    """A class that is not a Plugin subclass (config must reject it)."""


async def slow_then_fine(request: Request) -> None:
    """Suspends for a moment (the task path, not the immediate one), then lets it pass."""
    await asyncio.sleep(0.01)
    request.headers["X-Slow"] = "done"


class SleepConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    seconds: float


class Sleep(Plugin):
    """Access: take a while, then let the request pass (marked X-Slept)."""

    Config = SleepConfig

    async def access(self, request: Request) -> None:
        await asyncio.sleep(self.config.seconds)
        request.headers["X-Slept"] = str(self.config.seconds)


class StartupConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    fail: bool = False


class FailsToStart(Plugin):
    """Its constructor raises when told to: a plugin that cannot start."""

    Config = StartupConfig

    def __init__(self, config: StartupConfig) -> None:
        if config.fail:
            raise ConnectionError("cannot reach the demo backend")
        super().__init__(config)

    async def access(self, request: Request) -> None:
        request.headers["X-Started"] = "yes"
