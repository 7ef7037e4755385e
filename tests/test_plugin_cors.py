"""cors: preflights answered by the gateway, CORS headers on answers and on refusals
(a plugin that runs in the Rust core, through the real gateway)."""

from __future__ import annotations

from support.client import assert_json_error, fetch, get
from support.configs import route, simple_config

APP = "https://app.example.com"


def gateway_config(upstreams) -> dict:
    cfg = simple_config(upstreams, consumers=[{"name": "alice", "keys": ["alice-key"]}])
    cfg["routes"] += [
        route(
            "browser",
            ["/cors/*"],
            "echo",
            plugins={
                "cors": {
                    "allow_origins": [APP],
                    "expose_headers": ["X-Request-Id"],
                    "max_age": "10m",
                },
                "key-auth": {},
            },
        ),
    ]
    return cfg


def test_cors_preflight_is_answered_by_the_gateway(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    pre = fetch(
        "OPTIONS",
        gw.url("/cors/items"),
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, apikey",
        },
    )
    assert pre.status == 204 and pre.body == b""  # the echo upstream would answer 200 JSON
    assert pre.header("access-control-allow-origin") == APP
    assert "PUT" in pre.header("access-control-allow-methods")
    assert pre.header("access-control-allow-headers") == "content-type, apikey"
    assert pre.header("access-control-max-age") == "600"
    assert pre.header("vary") == "Origin"
    record = gw.records([pre.header("x-request-id")])[pre.header("x-request-id")]
    assert (record["status"], record["upstream_addr"]) == (204, "")


def test_cors_headers_on_answers_and_refusals(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    ok = get(gw.url("/cors/items"), headers={"Origin": APP, "apikey": "alice-key"})
    assert ok.status == 200
    assert ok.header("access-control-allow-origin") == APP
    assert ok.header("access-control-expose-headers") == "X-Request-Id"
    # A refusal must carry them too, or the page cannot read why it was refused.
    refused = get(gw.url("/cors/items"), headers={"Origin": APP})
    assert_json_error(refused, 401, "unauthorized")
    assert refused.header("access-control-allow-origin") == APP
    stranger = get(
        gw.url("/cors/items"), headers={"Origin": "https://evil.example", "apikey": "alice-key"}
    )
    assert stranger.status == 200
    assert stranger.header("access-control-allow-origin") is None
    plain = get(gw.url("/echo/no-cors"), headers={"Origin": APP})
    assert plain.header("access-control-allow-origin") is None
