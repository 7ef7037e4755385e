"""mock: answer a route's requests with a fixed response; the upstream is never called.

    mock:
      status: 201
      headers: {X-Mocked: "yes"}
      json: {id: 7, name: widget}   # or body: "plain text" (not both)
      delay: 200ms                  # optional: wait before answering (simulated latency)

Content-Type defaults to application/json for `json` and text/plain for `body` unless
`headers` sets one. With neither, the answer has an empty body.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec

from pygate.config.units import Duration
from pygate.plugins.builtin.transform_ops import header_problem
from pygate.plugins.python import Plugin, Request, Response
from pygate.plugins.registry import RouteContext, register_python

_NO_JSON: Any = msgspec.UNSET


class MockConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: Annotated[int, msgspec.Meta(ge=200, le=599)] = 200
    headers: dict[str, str] = {}
    body: str | None = None
    # UNSET rather than None so that `json: null` can be mocked too.
    json: Any | msgspec.UnsetType = msgspec.UNSET
    delay: Duration = Duration(0)


def check(config: MockConfig, context: RouteContext) -> Iterator[tuple[tuple, str]]:
    if config.body is not None and config.json is not msgspec.UNSET:
        yield ("json",), "set either body or json, not both"
    for name, value in config.headers.items():
        if problem := header_problem(name, value):
            yield ("headers", name), problem
    timeout = context.config.plugin_timeout
    if config.delay >= timeout:
        yield (
            ("delay",),
            f"must be shorter than plugin_timeout ({int(timeout)} ms), "
            "or every answer would be a 504 plugin_timeout",
        )


class Mock(Plugin):
    Config = MockConfig

    def __init__(self, config: MockConfig) -> None:
        super().__init__(config)
        headers = dict(config.headers)
        has_type = any(name.lower() == "content-type" for name in headers)
        if config.json is not msgspec.UNSET:
            self.body = msgspec.json.encode(config.json)
            if not has_type:
                headers["Content-Type"] = "application/json"
        elif config.body is not None:
            self.body = config.body.encode()
            if not has_type:
                headers["Content-Type"] = "text/plain; charset=utf-8"
        else:
            self.body = b""
        self.headers = list(headers.items())

    async def access(self, request: Request) -> Response | None:
        if self.config.delay:
            await asyncio.sleep(self.config.delay / 1000)
        return Response(self.config.status, headers=self.headers, body=self.body)


PLUGIN = register_python("mock", Mock, check=check)
