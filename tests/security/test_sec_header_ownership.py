"""The caller cannot strip or spoof the headers the gateway owns.

Upstreams trust `X-Consumer-Username` as "who authenticated". A client must not be able
to remove it (`Connection: x-consumer-username`), forge it (its own copy, merged or
instead), or smuggle a twin that CGI/WSGI upstreams read as the same variable
(`X_Consumer_Username`), on routes with auth and without. Raw sockets, so duplicate and
odd header names reach the gateway exactly as written.
"""

from __future__ import annotations

import pytest
from support.configs import route, upstream
from support.gateway import Gateway, running
from support.raw_http import echoed, raw_request

ALICE = ("apikey", "alice-key")


def ownership_config(upstreams, **http) -> dict:
    config = {
        "workers": 1,
        "upstreams": [upstream("echo", [upstreams.addr("echo")])],
        "consumers": [
            {"name": "alice", "keys": ["alice-key"]},
            {"name": "bob", "keys": ["bob-key"]},
        ],
        "routes": [
            route("open", ["/open/*"], "echo"),
            route("keyed", ["/keyed/*"], "echo", plugins={"key-auth": {}}),
            route(
                "keyed-visible",
                ["/visible/*"],
                "echo",
                plugins={"key-auth": {"hide_credentials": False}},
            ),
            route(
                "basic",
                ["/basic/*"],
                "echo",
                plugins={"basic-auth": {}},
            ),
        ],
    }
    config["consumers"][0]["basic_auth"] = [{"username": "alice", "password": "pw-alice"}]
    if http:
        config["http"] = http
    return config


@pytest.fixture(scope="module")
def hgw(upstreams, tmp_path_factory):
    config = ownership_config(upstreams)
    with running(Gateway(tmp_path_factory.mktemp("gw-ownership"), config)) as gateway:
        yield gateway


def consumer_seen(doc: dict) -> list[str]:
    return doc["seen"].get("x-consumer-username", [])


# Ways a client tries to forge or remove the identity header.
FORGERIES = [
    [("X-Consumer-Username", "bob")],
    [("x-consumer-username", "bob"), ("X-CONSUMER-USERNAME", "carol")],
    [("Connection", "x-consumer-username")],
    [("Connection", "close, X-Consumer-Username"), ("X-Consumer-Username", "bob")],
    [("Connection", "keep-alive"), ("Connection", "x-consumer-username")],
    [("X_Consumer_Username", "bob")],
    [("x_consumer-username", "bob")],
    [("X-Consumer_Username", "bob")],
]


@pytest.mark.parametrize("forged", FORGERIES)
def test_authenticated_identity_is_the_gateways_alone(hgw, forged):
    for prefix, creds in [
        ("/keyed/x", [ALICE]),
        ("/visible/x", [ALICE]),
        ("/basic/x", [("Authorization", "Basic YWxpY2U6cHctYWxpY2U=")]),
    ]:
        doc = echoed(raw_request(hgw.port, prefix, [*creds, *forged]))
        assert consumer_seen(doc) == ["alice"], (prefix, forged, doc["seen"])
        assert not any("_" in name for name in doc["seen"]), (prefix, doc["seen"])


@pytest.mark.parametrize("forged", FORGERIES)
def test_routes_without_auth_never_pass_a_client_identity(hgw, forged):
    doc = echoed(raw_request(hgw.port, "/open/x", forged))
    assert consumer_seen(doc) == [], (forged, doc["seen"])
    assert not any("_" in name for name in doc["seen"]), doc["seen"]


def test_other_underscored_headers_are_dropped_and_dashed_ones_kept(hgw):
    doc = echoed(raw_request(hgw.port, "/open/x", [("X_User", "forged"), ("X-User", "real")]))
    assert doc["seen"].get("x-user") == ["real"]
    assert "x_user" not in doc["seen"]


def test_underscores_can_be_allowed_but_never_for_owned_names(upstreams, make_gateway):
    gateway = make_gateway(ownership_config(upstreams, underscores_in_headers=True))
    doc = echoed(raw_request(gateway.port, "/open/x", [("X_Tenant", "blue")]))
    assert doc["seen"].get("x_tenant") == ["blue"]
    doc = echoed(raw_request(gateway.port, "/keyed/x", [ALICE, ("X-Consumer-Username", "bob")]))
    assert consumer_seen(doc) == ["alice"]


@pytest.mark.parametrize(
    "owned", ["X-Forwarded-For", "X-Forwarded-Host", "X-Request-Id", "X-Real-IP", "Forwarded"]
)
def test_connection_cannot_remove_what_the_gateway_sets(hgw, owned):
    doc = echoed(raw_request(hgw.port, "/open/x", [("Connection", owned)]))
    assert owned.lower() in doc["seen"], (owned, doc["seen"])


def test_connection_still_removes_the_clients_own_hop_by_hop_headers(hgw):
    doc = echoed(
        raw_request(hgw.port, "/open/x", [("Connection", "X-Hop"), ("X-Hop", "1"), ("X-E2E", "2")])
    )
    assert "x-hop" not in doc["seen"] and doc["seen"]["x-e2e"] == ["2"]


# hide_credentials: every place a key-auth key can be is removed, not only the one the
# key was read from, so a second credential never reaches the upstream.
@pytest.mark.parametrize(
    "extra",
    [
        [("X-Api-Key", "bob-key")],
        [("Authorization", "Bearer bob-key")],
        [("X-Api-Key", "alice-key"), ("Authorization", "Bearer alice-key")],
        [("apikey", "bob-key")],
    ],
)
def test_hide_credentials_removes_every_key_header(hgw, extra):
    doc = echoed(raw_request(hgw.port, "/keyed/x", [ALICE, *extra]))
    assert consumer_seen(doc) == ["alice"]
    for name in ("apikey", "x-api-key", "authorization"):
        assert name not in doc["seen"], (extra, doc["seen"])


def test_hide_credentials_keeps_authorization_of_another_scheme(hgw):
    doc = echoed(
        raw_request(hgw.port, "/keyed/x", [ALICE, ("Authorization", "Basic Zm9vOmJhcg==")])
    )
    assert doc["seen"]["authorization"] == ["Basic Zm9vOmJhcg=="]
    assert "apikey" not in doc["seen"]


def test_visible_credentials_are_passed_on(hgw):
    doc = echoed(raw_request(hgw.port, "/visible/x", [ALICE, ("X-Api-Key", "other")]))
    assert doc["seen"]["apikey"] == ["alice-key"]
    assert doc["seen"]["x-api-key"] == ["other"]
