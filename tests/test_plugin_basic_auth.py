"""basic-auth: the authentication plugin that runs in the Rust core, through the gateway."""

from __future__ import annotations

from support.auth_plugins import basic, config
from support.client import assert_json_error, get


def test_basic_auth(make_gateway, upstreams, tmp_path, jwks_server) -> None:
    gw = make_gateway(config(upstreams, tmp_path, jwks_server[1])[0])
    ok = get(gw.url("/basic/x"), headers=basic("bob", "b0b:pa55"))
    assert ok.status == 200
    seen = ok.upstream_headers()
    assert seen["x-consumer-username"] == "bob"
    assert "authorization" not in seen  # hide_credentials is on by default
    for headers in ({}, basic("bob", "wrong"), basic("alice", "b0b:pa55")):
        refused = get(gw.url("/basic/x"), headers=headers)
        assert_json_error(refused, 401, "unauthorized")
        assert refused.header("www-authenticate").startswith("Basic ")
    garbage = get(gw.url("/basic/x"), headers={"Authorization": "Basic %%%"})
    assert "malformed" in assert_json_error(garbage, 401, "unauthorized")["message"]
    rid = ok.header("x-request-id")
    assert gw.records([rid])[rid]["consumer"] == "bob"
