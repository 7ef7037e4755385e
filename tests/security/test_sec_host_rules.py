"""Host handling per RFC 9112 3.2, as nginx does it.

HTTP/1.1 needs exactly one valid Host: none, several, an empty or a malformed one is 400
(JSON) and never reaches an upstream. HTTP/1.0 may leave it out and is routed by the
host-less routes. For an absolute-form target (`GET http://host/path`) the URI's authority
wins over the Host header, for routing and for what is forwarded. A `preserve_host`
upstream therefore always gets one valid Host.
"""

from __future__ import annotations

import pytest
from support.configs import route, upstream
from support.gateway import Gateway, running
from support.raw_http import NO_HOST, echoed, error_kind, raw_request


@pytest.fixture(scope="module")
def hgw(upstreams, tmp_path_factory):
    config = {
        "workers": 1,
        "upstreams": [
            upstream("echo", [upstreams.addr("echo")]),
            upstream("host-exact", [upstreams.addr("host-exact")]),
        ],
        "routes": [
            route("any", ["/any/*"], "echo"),
            route("host-exact", ["/h/*"], "host-exact", hosts=["api.example.com"]),
            route("preserve", ["/preserve/*"], "echo", preserve_host=True),
        ],
    }
    with running(Gateway(tmp_path_factory.mktemp("gw-hosts"), config)) as gateway:
        yield gateway


def assert_400(resp) -> None:
    assert resp.status == 400, (resp.status, resp.body[:300])
    assert error_kind(resp) == "bad_request"


@pytest.mark.parametrize(
    "hosts",
    [
        [("Host", "api.example.com"), ("Host", "api.example.com")],
        [("Host", "api.example.com"), ("Host", "evil.test")],
        [("host", "evil.test"), ("HOST", "api.example.com")],
        [("Host", "api.example.com, evil.test")],
    ],
)
def test_several_hosts_are_400(hgw, hosts):
    for path in ["/preserve/x", "/h/x", "/any/x"]:
        assert_400(raw_request(hgw.port, path, hosts, host=NO_HOST))


def test_http_11_without_host_is_400(hgw):
    for path in ["/preserve/x", "/any/x"]:
        assert_400(raw_request(hgw.port, path, host=NO_HOST))


@pytest.mark.parametrize(
    "bad",
    [
        "",
        " ",
        "a:@b",
        "user@127.0.0.1",
        "user:pw@api.example.com",
        "127.0.0.1:99999",
        "127.0.0.1:8a",
        "127.0.0.1:",
        "127.0.0.1:-80",
        "a b",
        "api.example.com/x",
        "api.example.com?x",
        "api.example.com#x",
        "[::1",
        "[::1]junk",
        "[zz::1]",
        "exa%6dple.com",
        "api.example.com:80:80",
        "a..b",
        ".api.example.com",
        "api\\example.com",
        "api.\texample.com",
    ],
)
def test_invalid_hosts_are_400_and_never_forwarded(hgw, bad):
    for path in ["/preserve/x", "/h/x", "/any/x"]:
        assert_400(raw_request(hgw.port, path, host=bad))


@pytest.mark.parametrize(
    ("host", "target"),
    [
        ("api.example.com", "host-exact"),
        ("API.Example.COM", "host-exact"),
        ("api.example.com.", "host-exact"),
        ("api.example.com:8080", "host-exact"),
    ],
)
def test_valid_hosts_route_by_name(hgw, host, target):
    assert echoed(raw_request(hgw.port, "/h/x", host=host))["target"] == target


@pytest.mark.parametrize("host", ["[::1]:8080", "[::1]", "127.0.0.1", "under_score.test:1"])
def test_preserved_host_is_forwarded_exactly_once(hgw, host):
    doc = echoed(raw_request(hgw.port, "/preserve/x", host=host))
    assert doc["seen"]["host"] == [host]
    assert doc["seen"]["x-forwarded-host"] == [host]


def test_http_10_may_omit_host_and_uses_host_less_routes(hgw, upstreams):
    doc = echoed(raw_request(hgw.port, "/any/x", version="HTTP/1.0", host=NO_HOST))
    assert doc["target"] == "echo"
    # A preserve_host route still sends a valid Host: the target's address.
    doc = echoed(raw_request(hgw.port, "/preserve/x", version="HTTP/1.0", host=NO_HOST))
    assert doc["seen"]["host"] == [upstreams.addr("echo")]
    # Host-specific routes need a Host.
    resp = raw_request(hgw.port, "/h/x", version="HTTP/1.0", host=NO_HOST)
    assert resp.status == 404 and error_kind(resp) == "no_route"
    # HTTP/1.0 with a bad Host is still refused.
    assert_400(raw_request(hgw.port, "/any/x", version="HTTP/1.0", host="a:@b"))


def test_absolute_form_authority_wins_for_routing_and_forwarding(hgw):
    doc = echoed(raw_request(hgw.port, "http://api.example.com/h/x", host="other.test"))
    assert doc["target"] == "host-exact"
    doc = echoed(
        raw_request(hgw.port, "http://api.example.com:9999/preserve/x?q=1", host="other.test")
    )
    assert doc["seen"]["host"] == ["api.example.com:9999"]
    assert doc["seen"]["x-forwarded-host"] == ["api.example.com:9999"]
    assert doc["raw_path"] == "/preserve/x?q=1"
    # The other way round: a Host naming the host route does not help an absolute target.
    resp = raw_request(hgw.port, "http://other.test/h/x", host="api.example.com")
    assert resp.status == 404 and error_kind(resp) == "no_route"


@pytest.mark.parametrize(
    "target",
    [
        "http://user@api.example.com/h/x",
        "http://user:pw@api.example.com/h/x",
        "http://a:@b/h/x",
        "http://api.example.com:99999/h/x",
    ],
)
def test_absolute_form_with_a_bad_authority_is_400(hgw, target):
    assert_400(raw_request(hgw.port, target, host="api.example.com"))


def test_absolute_form_still_needs_a_host_header_on_http_11(hgw):
    assert_400(raw_request(hgw.port, "http://api.example.com/h/x", host=NO_HOST))
    doc = echoed(
        raw_request(hgw.port, "http://api.example.com/h/x", version="HTTP/1.0", host=NO_HOST)
    )
    assert doc["target"] == "host-exact"
