"""Routing: exact, {param} and prefix paths, hosts, methods (405) and no route (404)."""

from __future__ import annotations

import subprocess

from support.client import assert_json_error, fetch, get


def test_exact_path_and_query_are_forwarded(gw):
    resp = get(gw.url("/api/items?a=1&b=two%20words"))
    assert resp.status == 200
    echo = resp.json()
    assert echo["target"] == "exact"
    assert echo["method"] == "GET"
    assert echo["path"] == "/api/items"
    assert echo["query"] == "a=1&b=two%20words"


def test_param_path_beats_prefix(gw):
    echo = get(gw.url("/api/items/42")).json()
    assert echo["target"] == "param"
    assert echo["path"] == "/api/items/42"


def test_prefix_catches_what_no_more_specific_route_matches(gw):
    for path in ["/api/other", "/api/items/42/parts", "/api/a/b/c/d"]:
        echo = get(gw.url(path)).json()
        assert echo["target"] == "prefix", path
        assert echo["path"] == path


def test_exact_route_allows_its_listed_methods(gw):
    resp = fetch("POST", gw.url("/api/items"), data=b'{"name": "x"}')
    assert resp.status == 200
    echo = resp.json()
    assert (echo["target"], echo["method"], echo["body"]) == ("exact", "POST", '{"name": "x"}')


def test_method_not_allowed_is_405_with_allow_header(gw):
    resp = fetch("DELETE", gw.url("/api/items/42"))
    assert_json_error(resp, 405, "method_not_allowed")
    allow = {m.strip().upper() for m in (resp.header("allow") or "").split(",")}
    assert "GET" in allow, resp.headers
    assert "DELETE" not in allow


def test_unknown_path_is_404_json(gw):
    resp = get(gw.url("/no/such/route"))
    assert_json_error(resp, 404, "no_route")


def test_exact_host_beats_wildcard_host(gw):
    echo = get(gw.url("/h/x"), headers={"Host": "api.example.com"}).json()
    assert echo["target"] == "host-exact"


def test_wildcard_host(gw):
    echo = get(gw.url("/h/x"), headers={"Host": "shop.example.com"}).json()
    assert echo["target"] == "host-wild"


def test_host_with_port_matches_by_name(gw):
    echo = get(gw.url("/h/x"), headers={"Host": f"api.example.com:{gw.port}"}).json()
    assert echo["target"] == "host-exact"


def test_host_that_matches_no_route_is_404(gw):
    resp = get(gw.url("/h/x"), headers={"Host": "example.org"})
    assert_json_error(resp, 404, "no_route")


def test_upstream_sees_target_addr_as_host_unless_preserve_host(gw, upstreams):
    seen = get(gw.url("/echo/x"), headers={"Host": "client.example"}).upstream_headers()
    assert seen["host"] == upstreams.addr("echo")
    seen = get(gw.url("/preserve/x"), headers={"Host": "client.example"}).upstream_headers()
    assert seen["host"] == "client.example"


def test_curl_client_through_gateway(gw):
    # A second, independent client implementation.
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "30", "-H", "Host: api.example.com", gw.url("/h/curl")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert '"target": "host-exact"' in out.stdout
