"""ip-restriction: allow and deny lists (a plugin that runs in the Rust core, through the
real gateway; the client is always 127.0.0.1)."""

from __future__ import annotations

from support.client import assert_json_error, get
from support.configs import route, simple_config


def gateway_config(upstreams) -> dict:
    cfg = simple_config(upstreams)
    cfg["routes"] += [
        route(
            "deny-me", ["/ipdeny/*"], "echo", plugins={"ip-restriction": {"deny": ["127.0.0.1"]}}
        ),
        route(
            "allow-lo",
            ["/ipallow/*"],
            "echo",
            plugins={"ip-restriction": {"allow": ["127.0.0.0/8", "::1"]}},
        ),
        route(
            "allow-other",
            ["/ipother/*"],
            "echo",
            plugins={"ip-restriction": {"allow": ["10.0.0.0/8"]}},
        ),
    ]
    return cfg


def test_ip_restriction_allows_and_denies(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    denied = get(gw.url("/ipdeny/x"))
    error = assert_json_error(denied, 403, "ip_forbidden")
    assert get(gw.url("/ipallow/x")).status == 200
    assert_json_error(get(gw.url("/ipother/x")), 403, "ip_forbidden")
    record = gw.records([error["request_id"]])[error["request_id"]]
    assert (record["status"], record["error_kind"], record["upstream_addr"]) == (
        403,
        "ip_forbidden",
        "",
    )
