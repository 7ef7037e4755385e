"""Cross-site request forgery and DNS rebinding against the admin listener.

A web page in the operator's browser can send requests to the admin port: simple
requests (text/plain, form encodings, multipart) need no CORS preflight, and a page on
the attacker's name that re-resolves to 127.0.0.1 (DNS rebinding) even reads the
answers. The admin listener must refuse a foreign or opaque Origin, a Host that is not
its own address (or a configured name), and any body that is not JSON (or YAML where
an import takes YAML). Every variant is sent with a valid token, so it is the browser
guard that refuses it, not the token check; and none of them may change anything.
"""

from __future__ import annotations

import json
import socket

import pytest
from support.admin_api import AdminApi
from support.client import RawResponse, read_response
from support.configs import simple_config
from support.gateway import Gateway, running

TOKEN = "csrf-test-token"
ROUTE = json.dumps({"name": "forged", "paths": ["/forged/*"], "upstream": "echo"}).encode()


@pytest.fixture(scope="module")
def admin_gw(upstreams, tmp_path_factory):
    admin = {"token": TOKEN, "allowed_hosts": ["admin.internal", "ops.example.net:8443"]}
    cfg = simple_config(upstreams, admin=admin)
    cfg["consumers"] = [{"name": "alice", "keys": ["alice-csrf-key"]}]
    with running(Gateway(tmp_path_factory.mktemp("gw-csrf"), cfg)) as gateway:
        yield gateway


def send(
    gw: Gateway,
    method: str,
    path: str,
    body: bytes = b"",
    *,
    host: str | None = "own",
    headers: list[tuple[str, str]] = (),
    token: str | None = TOKEN,
) -> RawResponse:
    """One request as raw bytes, so Host, Origin and Content-Type are exactly ours."""
    lines = [f"{method} {path} HTTP/1.1"]
    if host is not None:
        lines.append(f"Host: {f'127.0.0.1:{gw.admin_port}' if host == 'own' else host}")
    if token:
        lines.append(f"Authorization: Bearer {token}")
    lines += [f"{name}: {value}" for name, value in headers]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    lines.append("Connection: close")
    head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    with socket.create_connection(("127.0.0.1", gw.admin_port), timeout=30) as sock:
        sock.sendall(head + body)
        response = read_response(sock)
    assert response is not None, "the admin listener closed without answering"
    return response


def assert_refused(response: RawResponse, status: int, error: str) -> None:
    assert response.status == status, (response.status, response.body[:300])
    assert response.header("content-type").startswith("application/json"), response.headers
    body = response.json()
    assert body["error"] == error, body
    assert isinstance(body.get("message"), str) and body["message"], body


def route_names(gw: Gateway) -> list[str]:
    status, answer = AdminApi(gw, TOKEN).get("/routes")
    assert status == 200, answer
    return [r["name"] for r in answer["data"]]


def own_origin(gw: Gateway) -> str:
    return f"http://127.0.0.1:{gw.admin_port}"


FOREIGN_ORIGINS = [
    "http://evil.example",
    "null",  # sandboxed iframes, file:// pages, some redirects
    "http://127.0.0.1:1",  # the right host, another port: another site on this machine
    "https://127.0.0.1:{port}",  # the right host and port, another scheme
    "http://localhost:1",
    "http://127.0.0.1:{port}.evil.example",
    "http://127.0.0.1:{port}@evil.example",
    "HTTP://EVIL.EXAMPLE",
]


@pytest.mark.parametrize("origin", FOREIGN_ORIGINS)
def test_foreign_origin_is_refused_even_with_a_json_body(admin_gw, origin):
    origin = origin.format(port=admin_gw.admin_port)
    headers = [("Origin", origin), ("Content-Type", "application/json")]
    assert_refused(
        send(admin_gw, "POST", "/routes", ROUTE, headers=headers), 403, "forbidden_origin"
    )
    assert "forged" not in route_names(admin_gw)


@pytest.mark.parametrize("method,path", [
    ("PUT", "/routes/forged"), ("PATCH", "/routes/echo"), ("DELETE", "/consumers/alice"),
    ("POST", "/consumers/alice/keys"), ("POST", "/config"), ("POST", "/logs/query"),
    ("GET", "/consumers"), ("GET", "/config"),
])  # fmt: skip
def test_foreign_origin_is_refused_on_every_method(admin_gw, method, path):
    body = b"{}" if method in ("PUT", "PATCH", "POST") else b""
    headers = [("Origin", "http://evil.example"), ("Content-Type", "application/json")]
    assert_refused(send(admin_gw, method, path, body, headers=headers), 403, "forbidden_origin")
    assert AdminApi(admin_gw, TOKEN).get("/consumers/alice")[0] == 200


def test_two_origin_headers_are_refused(admin_gw):
    headers = [("Origin", own_origin(admin_gw)), ("Origin", "http://evil.example"),
               ("Content-Type", "application/json")]  # fmt: skip
    assert_refused(
        send(admin_gw, "POST", "/routes", ROUTE, headers=headers), 403, "forbidden_origin"
    )
    assert "forged" not in route_names(admin_gw)


def test_cross_site_fetch_metadata_is_refused(admin_gw):
    # A no-cors GET (an <img> or <script> tag) carries no Origin, but Sec-Fetch-Site.
    for site in ("cross-site", "same-site"):
        response = send(admin_gw, "GET", "/consumers", headers=[("Sec-Fetch-Site", site)])
        assert_refused(response, 403, "forbidden_origin")


CONTENT_TYPES = [
    ("text/plain", ROUTE),
    ("text/plain;charset=UTF-8", ROUTE),
    ("application/x-www-form-urlencoded", b"name=forged&paths=/forged/*&upstream=echo"),
    ("multipart/form-data; boundary=XyZ",
     b'--XyZ\r\nContent-Disposition: form-data; name="x"\r\n\r\n' + ROUTE + b"\r\n--XyZ--\r\n"),
    ("application/yaml", b"name: forged\npaths: [/forged/*]\nupstream: echo\n"),
    ("application/jsonp", ROUTE),
    ("text/json", ROUTE),
    (None, ROUTE),  # a body with no Content-Type at all
]  # fmt: skip


@pytest.mark.parametrize("content_type,body", CONTENT_TYPES)
@pytest.mark.parametrize("origin", [None, "own", "http://evil.example"])
def test_only_json_bodies_are_accepted(admin_gw, content_type, body, origin):
    headers = [("Content-Type", content_type)] if content_type else []
    if origin is not None:
        headers.append(("Origin", own_origin(admin_gw) if origin == "own" else origin))
    response = send(admin_gw, "POST", "/routes", body, headers=headers)
    if origin == "http://evil.example":
        assert response.status == 403, response.body
    else:
        assert_refused(response, 415, "unsupported_media_type")
    assert "forged" not in route_names(admin_gw)


@pytest.mark.parametrize("path,body", [
    ("/logs/query", b'{"sql": "SELECT 1"}'),
    ("/bench-runs", b"{}"),
    ("/consumers/alice/keys", b'{"key": "forged-key"}'),
])  # fmt: skip
def test_every_body_endpoint_refuses_simple_content_types(admin_gw, path, body):
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = send(admin_gw, "POST", path, body, headers=[("Content-Type", content_type)])
        assert_refused(response, 415, "unsupported_media_type")
    keys = AdminApi(admin_gw, TOKEN).get("/consumers/alice")[1]["keys"]
    assert len(keys) == 1


def test_yaml_is_accepted_where_the_import_takes_yaml(admin_gw):
    status, document = AdminApi(admin_gw, TOKEN).get("/config")
    assert status == 200
    for content_type in ("application/yaml", "application/x-yaml"):
        response = send(admin_gw, "POST", "/config", document.encode(),
                        headers=[("Content-Type", content_type)])  # fmt: skip
        assert response.status == 200, response.body


def test_same_origin_browser_requests_pass(admin_gw):
    # The dashboard (or any page the admin listener serves) sends its own Origin.
    for origin in (own_origin(admin_gw), f"http://localhost:{admin_gw.admin_port}"):
        host = origin.removeprefix("http://")
        headers = [("Origin", origin), ("Content-Type", "application/json"),
                   ("Sec-Fetch-Site", "same-origin")]  # fmt: skip
        response = send(admin_gw, "POST", "/logs/query", b'{"sql": "SELECT 1 AS one"}',
                        host=host, headers=headers)  # fmt: skip
        assert response.status == 200, response.body
        assert response.json()["rows"] == [[1]]
    # A body-less POST (a key made up by the gateway) needs no Content-Type.
    response = send(admin_gw, "POST", "/consumers/alice/keys",
                    headers=[("Origin", own_origin(admin_gw))])  # fmt: skip
    assert response.status == 201, response.body
    key = response.json()["key"]
    assert AdminApi(admin_gw, TOKEN).delete(f"/consumers/alice/keys/{key}")[0] == 204


FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:{port}",  # the right port, another name: a rebound name
    "127.0.0.1.nip.io:{port}",
    "localhost.evil.example:{port}",
    "127.0.0.1:1",
    "127.0.0.1:{port}@evil.example",
    "admin.internal.evil.example:{port}",
    "ops.example.net",  # configured with its port 8443 only
    "",
]


@pytest.mark.parametrize("host", FOREIGN_HOSTS)
@pytest.mark.parametrize("method,path,body", [
    ("GET", "/status", b""), ("GET", "/consumers", b""), ("GET", "/dashboard", b""),
    ("POST", "/routes", ROUTE), ("POST", "/logs/query", b'{"sql": "SELECT 1"}'),
])  # fmt: skip
def test_dns_rebinding_foreign_host_is_refused(admin_gw, host, method, path, body):
    host = host.format(port=admin_gw.admin_port)
    headers = [("Content-Type", "application/json")] if body else []
    response = send(admin_gw, method, path, body, host=host, headers=headers)
    assert_refused(response, 403, "forbidden_host")
    assert "forged" not in route_names(admin_gw)


def test_absent_or_repeated_host_is_refused(admin_gw):
    assert send(admin_gw, "GET", "/status", host=None).status in (400, 403)
    two = [("Host", "evil.example")]
    assert send(admin_gw, "GET", "/status", headers=two).status in (400, 403)


@pytest.mark.parametrize("host", [
    "127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", "admin.internal",
    "admin.internal:{port}", "ADMIN.internal:{port}", "ops.example.net:8443",
])  # fmt: skip
def test_own_address_and_configured_names_pass(admin_gw, host):
    response = send(admin_gw, "GET", "/status", host=host.format(port=admin_gw.admin_port))
    assert response.status == 200, response.body
