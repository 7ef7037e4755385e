"""mock: answers for the upstream (status, headers, JSON, delay), through the real gateway."""

from __future__ import annotations

import time

from support.builtin_gateway import builtin_gateway
from support.client import get
from support.configs import route


def plugin_routes() -> list[dict]:
    return [
        route(
            "mocked",
            ["/mocked/*"],
            "dead",  # never called: a 502 would show that it was
            plugins={
                "mock": {
                    "status": 201,
                    "headers": {"X-Mocked": "yes"},
                    "json": {"id": 7, "name": "widget"},
                    "delay": "300ms",
                }
            },
        ),
    ]


gw = builtin_gateway(plugin_routes)


def test_mock_answers_without_the_upstream(gw) -> None:
    started = time.monotonic()
    resp = get(gw.url("/mocked/anything?x=1"))
    elapsed = time.monotonic() - started
    assert resp.status == 201
    assert resp.json() == {"id": 7, "name": "widget"}
    assert resp.header("content-type") == "application/json"
    assert resp.header("x-mocked") == "yes"
    assert elapsed >= 0.3
    rid = resp.header("x-request-id")
    record = gw.records([rid])[rid]
    assert (record["status"], record["upstream_addr"], record["route"]) == (201, "", "mocked")
