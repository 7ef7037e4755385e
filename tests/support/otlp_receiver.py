"""An OTLP/HTTP trace receiver for tests: a real aiohttp server on 127.0.0.1 that decodes
each POST /v1/traces body as `ExportTraceServiceRequest` (the opentelemetry-proto
package's messages) and keeps the spans and the request headers it saw."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)


class OtlpReceiver:
    def __init__(self) -> None:
        self.spans: list[Any] = []
        self.resources: list[Any] = []
        self.headers: list[dict[str, str]] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    async def _export(self, request: web.Request) -> web.Response:
        body = await request.read()
        message = ExportTraceServiceRequest()
        message.ParseFromString(body)
        with self._lock:
            self.headers.append({k.lower(): v for k, v in request.headers.items()})
            for rs in message.resource_spans:
                self.resources.append(rs.resource)
                for ss in rs.scope_spans:
                    self.spans.extend(ss.spans)
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/traces", self._export)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    def start(self) -> OtlpReceiver:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def snapshot(self) -> list[Any]:
        with self._lock:
            return list(self.spans)


def attributes(span: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kv in span.attributes:
        which = kv.value.WhichOneof("value")
        out[kv.key] = getattr(kv.value, which) if which else None
    return out
