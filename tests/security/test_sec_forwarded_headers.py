"""The gateway owns X-Forwarded-For / -Host / -Proto (and every other X-Forwarded-*),
X-Real-IP and Forwarded.

From an untrusted peer (the default: `http.trusted_proxies` is empty) whatever the client
sent is replaced: X-Forwarded-For and X-Real-IP become the peer address, Forwarded is
rewritten to this hop's element, X-Forwarded-Host is the Host, X-Forwarded-Proto is http,
and other X-Forwarded-* are dropped. So a client cannot pick its own rate-limit bucket,
pass an ip-restriction or fake its address in the call record.

From a trusted proxy the headers are kept and appended to, and the client address is the
right-most untrusted X-Forwarded-For entry (nginx realip, recursive): that address is what
rate limiting by ip, ip-restriction, X-Real-IP and the call record use.
"""

from __future__ import annotations

import pytest
from support.configs import route, upstream
from support.gateway import Gateway, running
from support.raw_http import echoed, error_kind, raw_request

SPOOFED = [
    ("X-Forwarded-For", "203.0.113.7"),
    ("X-Forwarded-Host", "evil.test"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "443"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Real-IP", "203.0.113.7"),
    ("Forwarded", 'for=203.0.113.7;proto=https;host="evil.test"'),
]


def forwarded_config(upstreams, trusted: list[str] | None = None) -> dict:
    config = {
        "workers": 1,
        "upstreams": [upstream("echo", [upstreams.addr("echo")])],
        "routes": [
            route("open", ["/open/*"], "echo"),
            route(
                "by-ip",
                ["/by-ip/*"],
                "echo",
                plugins={"rate-limit": {"rate": 1, "per": "600s", "by": "ip"}},
            ),
            route(
                "only-doc-net",
                ["/doc-net/*"],
                "echo",
                plugins={"ip-restriction": {"allow": ["203.0.113.0/24"]}},
            ),
        ],
    }
    if trusted is not None:
        config["http"] = {"trusted_proxies": trusted}
    return config


@pytest.fixture(scope="module")
def fgw(upstreams, tmp_path_factory):
    config = forwarded_config(upstreams)
    with running(Gateway(tmp_path_factory.mktemp("gw-fwd"), config)) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def trusted_gw(upstreams, tmp_path_factory):
    # The test client connects from 127.0.0.1: here it plays the trusted load balancer.
    config = forwarded_config(upstreams, trusted=["127.0.0.1/32", "10.0.0.0/8"])
    with running(Gateway(tmp_path_factory.mktemp("gw-fwd-trusted"), config)) as gateway:
        yield gateway


def only(doc: dict, name: str) -> str:
    values = doc["seen"].get(name, [])
    assert len(values) == 1, (name, doc["seen"])
    return values[0]


@pytest.mark.parametrize(
    "sent",
    [
        SPOOFED,
        [(k.lower(), v) for k, v in SPOOFED],
        [*SPOOFED, ("X-Forwarded-For", "198.51.100.1")],
        [("Connection", "x-forwarded-for, forwarded"), *SPOOFED],
    ],
)
def test_untrusted_peers_cannot_set_forwarding_headers(fgw, sent):
    host = f"127.0.0.1:{fgw.port}"
    doc = echoed(raw_request(fgw.port, "/open/x", sent))
    assert only(doc, "x-forwarded-for") == "127.0.0.1"
    assert only(doc, "x-real-ip") == "127.0.0.1"
    assert only(doc, "x-forwarded-host") == host
    assert only(doc, "x-forwarded-proto") == "http"
    assert only(doc, "forwarded") == f'for=127.0.0.1;host="{host}";proto=http'
    for name in ("x-forwarded-port", "x-forwarded-prefix"):
        assert name not in doc["seen"], doc["seen"]


def test_a_spoofed_address_gets_no_fresh_rate_limit_bucket(fgw):
    statuses = [
        raw_request(fgw.port, "/by-ip/x", [("X-Forwarded-For", f"198.51.100.{i}")]).status
        for i in range(1, 4)
    ]
    assert statuses == [200, 429, 429]


def test_a_spoofed_address_passes_no_ip_restriction(fgw):
    for name in ("X-Forwarded-For", "X-Real-IP"):
        resp = raw_request(fgw.port, "/doc-net/x", [(name, "203.0.113.7")])
        assert resp.status == 403 and error_kind(resp) == "ip_forbidden", name


def test_call_record_has_the_peer_address_not_the_spoofed_one(fgw):
    resp = raw_request(fgw.port, "/open/x", [("X-Forwarded-For", "203.0.113.7")])
    rid = resp.header("x-request-id")
    assert fgw.records([rid])[rid]["client_ip"] == "127.0.0.1"


def test_a_trusted_proxy_chain_is_kept_and_appended_to(trusted_gw):
    doc = echoed(raw_request(trusted_gw.port, "/open/x", SPOOFED))
    assert only(doc, "x-forwarded-for") == "203.0.113.7, 127.0.0.1"
    assert only(doc, "x-real-ip") == "203.0.113.7"
    assert only(doc, "x-forwarded-host") == "evil.test"
    assert only(doc, "x-forwarded-proto") == "https"
    assert only(doc, "x-forwarded-prefix") == "/admin"
    host = f"127.0.0.1:{trusted_gw.port}"
    assert only(doc, "forwarded") == (
        f'for=203.0.113.7;proto=https;host="evil.test", for=127.0.0.1;host="{host}";proto=http'
    )


@pytest.mark.parametrize(
    ("chain", "client"),
    [
        (["203.0.113.7"], "203.0.113.7"),
        # Whatever the client itself put in front does not count.
        (["198.51.100.9, 203.0.113.7"], "203.0.113.7"),
        (["198.51.100.9, 203.0.113.7, 10.1.2.3"], "203.0.113.7"),
        (["198.51.100.9", "203.0.113.7"], "203.0.113.7"),
        ([], "127.0.0.1"),
    ],
)
def test_behind_a_trusted_proxy_the_client_is_the_first_untrusted_hop(trusted_gw, chain, client):
    headers = [("X-Forwarded-For", hop) for hop in chain]
    doc = echoed(raw_request(trusted_gw.port, "/open/x", headers))
    assert only(doc, "x-real-ip") == client
    resp = raw_request(trusted_gw.port, "/doc-net/x", headers)
    assert resp.status == (200 if client.startswith("203.0.113.") else 403), chain


def test_behind_a_trusted_proxy_rate_limits_count_per_real_client(trusted_gw):
    def status(client: str) -> int:
        return raw_request(trusted_gw.port, "/by-ip/x", [("X-Forwarded-For", client)]).status

    assert [status("198.51.100.1"), status("198.51.100.1")] == [200, 429]
    assert status("198.51.100.2") == 200


def test_behind_a_trusted_proxy_the_record_has_the_real_client(trusted_gw):
    resp = raw_request(trusted_gw.port, "/open/x", [("X-Forwarded-For", "203.0.113.44")])
    rid = resp.header("x-request-id")
    assert trusted_gw.records([rid])[rid]["client_ip"] == "203.0.113.44"
