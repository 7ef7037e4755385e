"""HTTP/2 from clients: cleartext by prior knowledge (h2c), served by the same pipeline as
HTTP/1.1: routing, plugins, limits and call records (with their `protocol`).

Clients: curl --http2-prior-knowledge, httpx with http2 (the `h2` package), nghttp.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import httpx
import pytest
from support.client import get, raw_exchange
from support.configs import route, upstream
from support.gateway import Gateway

MAX_HEADER_BYTES = 4096
MAX_HEADER_LIST = 16384


@pytest.fixture(scope="module")
def h2gw(upstreams, tmp_path_factory):
    config = {
        "workers": 1,
        "limits": {"max_header_bytes": MAX_HEADER_BYTES, "max_body_bytes": "32k"},
        "http2": {"h2c": True, "max_header_list_size": MAX_HEADER_LIST},
        "consumers": [{"name": "alice", "keys": ["alice-key"]}],
        "upstreams": [upstream("echo", [upstreams.addr("echo")])],
        "routes": [
            route("echo", ["/echo/*"], "echo"),
            route("h2-host", ["/hosted/*"], "echo", hosts=["api.h2.test"]),
            route("h2-keyed", ["/keyed/*"], "echo", plugins={"key-auth": {}}),
        ],
    }
    gateway = Gateway(tmp_path_factory.mktemp("gw-h2"), config)
    try:
        gateway.start()
        yield gateway
        gateway.stop()
    finally:
        gateway.kill()


@pytest.fixture
def client(h2gw):
    # http1=False: prior knowledge, no Upgrade dance (the gateway does not offer h2c Upgrade).
    with httpx.Client(http1=False, http2=True, base_url=h2gw.url(""), timeout=30) as c:
        yield c


def error_of(resp: httpx.Response) -> dict:
    assert "json" in resp.headers.get("content-type", ""), resp.headers
    err = resp.json()["error"]
    assert resp.headers["x-request-id"] == err["request_id"]
    return err


def test_curl_prior_knowledge(h2gw):
    status, doc = curl_h2(h2gw.url("/echo/curl?x=1"))
    assert status.startswith("HTTP/2 200"), status
    assert (doc["path"], doc["query"], doc["method"]) == ("/echo/curl", "x=1", "GET")


def test_routing_body_and_upstream_headers(client, h2gw):
    resp = client.post("/echo/a/../b", content=b"x" * 5000, headers={"x-thing": "1"})
    assert resp.http_version == "HTTP/2"
    assert resp.status_code == 200
    doc = resp.json()
    # The path is normalised as on HTTP/1.1; the upstream gets an HTTP/1.1 request with a
    # Host taken from :authority.
    assert doc["path"] == "/echo/b"
    assert doc["body_size"] == 5000
    headers = {k.lower(): v for k, v in doc["headers"]}
    assert headers["host"] == f"127.0.0.1:{upstream_port(doc)}"
    assert headers["x-forwarded-host"] == f"127.0.0.1:{h2gw.port}"
    assert headers["x-thing"] == "1"
    # Hop-by-hop headers do not exist in h2 and are not invented for the upstream either.
    assert "connection" not in headers or headers["connection"].lower() == "keep-alive"


def upstream_port(doc: dict) -> int:
    return doc["port"]


def test_host_routes_use_authority(client):
    ok = client.get("/hosted/x", headers={"host": "api.h2.test"})
    assert ok.status_code == 200 and ok.json()["path"] == "/hosted/x"
    missing = client.get("/hosted/x")
    assert missing.status_code == 404
    assert error_of(missing)["kind"] == "no_route"


def test_plugins_apply(client):
    refused = client.get("/keyed/x")
    assert refused.status_code == 401
    assert error_of(refused)["kind"] == "unauthorized"
    allowed = client.get("/keyed/x", headers={"apikey": "alice-key"})
    assert allowed.status_code == 200


def curl_h2(*args: str) -> tuple[str, dict]:
    """curl by prior knowledge; returns the status line and the JSON body."""
    out = subprocess.run(
        ["curl", "-sS", "--http2-prior-knowledge", "-i", *args],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout.decode()
    head, _, body = out.replace("\r\n", "\n").partition("\n\n")
    return head.splitlines()[0], json.loads(body)


def test_limits_answer_json(client):
    # Within the client's first flow-control window, so it has sent the whole upload when
    # the early answer comes (and the stream is reset, RFC 9113 8.1).
    big_body = client.post("/echo/big", content=b"y" * 40_000)
    assert big_body.status_code == 413
    assert error_of(big_body)["kind"] == "body_too_large"
    # Over limits.max_header_bytes but within the h2 header list: the pipeline's JSON 431.
    big_head = client.get("/echo/h", headers={"x-big": "v" * (MAX_HEADER_BYTES + 100)})
    assert big_head.status_code == 431
    assert error_of(big_head)["kind"] == "header_too_large"


def test_many_streams_on_one_connection(client):
    # Sequential requests on the one multiplexed connection each get their own answer.
    for i in range(20):
        resp = client.get(f"/echo/seq/{i}")
        assert resp.status_code == 200 and resp.json()["path"] == f"/echo/seq/{i}"


def test_records_say_http2(client, h2gw):
    h2 = client.get("/echo/record-h2")
    refused = client.get("/nowhere")
    h1 = get(h2gw.url("/echo/record-h1"))
    ids = [h2.headers["x-request-id"], refused.headers["x-request-id"], h1.header("x-request-id")]
    records = h2gw.records(ids)
    assert records[ids[0]]["protocol"] == "HTTP/2"
    assert records[ids[0]]["route"] == "echo" and records[ids[0]]["status"] == 200
    assert records[ids[1]]["protocol"] == "HTTP/2" and records[ids[1]]["status"] == 404
    assert records[ids[2]]["protocol"] == "HTTP/1.1"


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp2-client not installed")
def test_nghttp_client(h2gw):
    out = subprocess.run(
        ["nghttp", "-v", h2gw.url("/echo/nghttp")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert ":status: 200" in out
    assert '"path": "/echo/nghttp"' in out or '"path":"/echo/nghttp"' in out


def test_http1_still_served_with_h2c_on(h2gw):
    resp = get(h2gw.url("/echo/plain"))
    assert resp.status == 200 and resp.json()["path"] == "/echo/plain"
    # Starts like the preface but is not it: a malformed HTTP/1 request.
    raw = raw_exchange(h2gw.port, b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
    assert raw is not None and raw.status == 400, raw


def test_h2c_is_off_by_default(upstreams, make_gateway):
    gateway = make_gateway(
        {
            "workers": 1,
            "upstreams": [upstream("echo", [upstreams.addr("echo")])],
            "routes": [route("echo", ["/echo/*"], "echo")],
        }
    )
    with (
        httpx.Client(http1=False, http2=True, timeout=30) as c,
        pytest.raises(httpx.HTTPError),
    ):
        c.get(gateway.url("/echo/x"))
    # The preface on an HTTP/1-only listener is answered as an unsupported version.
    raw = raw_exchange(gateway.port, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    assert raw is not None and raw.status == 505, raw
    assert get(gateway.url("/echo/x")).status == 200
