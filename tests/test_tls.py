"""TLS termination in the core: certificates by SNI (exact, wildcard, default), TLS 1.2
and 1.3, ALPN, plain and TLS listeners at once, redirect to HTTPS, the call record's
TLS columns. Certificates are made in the test; clients are curl and Python's ssl."""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import subprocess

import pytest
from support.client import get, read_response
from support.configs import route, simple_config
from support.gateway import Gateway, running
from support.net import free_port
from support.tls_certs import Ca, client_context, tls_get


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    ca = Ca(tmp_path_factory.mktemp("pki"))
    site = ca.issue("site", "a.test", ["a.test", "*.wild.test"])
    other = ca.issue("other", "b.test", ["b.test"])
    return ca, site, other


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory, upstreams, pki):
    ca, site, other = pki
    certificates = [
        {"cert": str(site.cert), "key": str(site.key)},
        {"cert": str(other.cert), "key": str(other.key)},
    ]
    config = simple_config(
        upstreams,
        # HTTP/1.1 only, as the tests below expect; HTTP/2 over TLS: tests/test_http2_tls.py.
        http2={"over_tls": False},
        listeners=[
            {"listen": f"127.0.0.1:{free_port()}", "tls": {"certificates": certificates}},
            {
                "listen": f"127.0.0.1:{free_port()}",
                "tls": {"certificates": certificates, "strict_sni": True},
            },
        ],
    )
    config["routes"].append(route("secure", ["/secure/*"], "echo", https_redirect=True))
    gw = Gateway(tmp_path_factory.mktemp("tls-gw"), config)
    with running(gw):
        gw.tls_port = int(config["listeners"][0]["listen"].rsplit(":", 1)[1])
        gw.strict_port = int(config["listeners"][1]["listen"].rsplit(":", 1)[1])
        yield gw


def test_sni_chooses_the_certificate_exact_wildcard_and_default(tls_gw, pki):
    ca, site, other = pki
    trusted = client_context(ca.cert)
    assert tls_get(tls_gw.tls_port, "a.test", "/echo/a", trusted).server_cn == "a.test"
    assert tls_get(tls_gw.tls_port, "b.test", "/echo/b", trusted).server_cn == "b.test"
    # A wildcard covers one label: x.wild.test, not a.b.wild.test.
    assert tls_get(tls_gw.tls_port, "x.wild.test", "/echo/w", trusted).status == 200
    # Unknown names and clients without SNI get the default (first) certificate, as with
    # nginx's default_server; it does not name them, so a verifying client refuses it.
    anything = client_context()
    for name in ("unknown.test", "a.b.wild.test", None):
        answer = tls_get(tls_gw.tls_port, name, "/echo/d", anything)
        assert (answer.status, answer.server_cn) == (200, "a.test")
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_get(tls_gw.tls_port, "unknown.test", "/echo/d", trusted)


def test_strict_sni_refuses_unknown_names_with_an_alert(tls_gw, pki):
    ca, _, _ = pki
    assert tls_get(tls_gw.strict_port, "b.test", "/echo/s", client_context(ca.cert)).status == 200
    for name in ("unknown.test", None):
        with pytest.raises(ssl.SSLError, match="(?i)handshake failure|alert"):
            tls_get(tls_gw.strict_port, name, "/echo/s", client_context())
    # The listener still serves known names after refusing.
    assert tls_get(tls_gw.strict_port, "a.test", "/echo/s", client_context(ca.cert)).status == 200


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_with_resolve_and_cacert(tls_gw, pki):
    ca, _, _ = pki
    port = tls_gw.tls_port
    res = subprocess.run(
        ["curl", "-sS", "--resolve", f"b.test:{port}:127.0.0.1", "--cacert", str(ca.cert),
         "-w", "\n%{http_code} %{http_version}", f"https://b.test:{port}/echo/curl"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    body, _, tail = res.stdout.rpartition("\n")
    assert tail == "200 1.1"
    assert json.loads(body)["path"] == "/echo/curl"


def test_tls_versions_and_alpn(tls_gw, pki):
    ca, _, _ = pki
    v12 = client_context(ca.cert, maximum_version=ssl.TLSVersion.TLSv1_2)
    assert tls_get(tls_gw.tls_port, "a.test", "/echo/v", v12).version == "TLSv1.2"
    v13 = client_context(ca.cert, alpn=["h2", "http/1.1"])
    answer = tls_get(tls_gw.tls_port, "a.test", "/echo/v", v13)
    # HTTP/2 is not offered by this listener: a client that offers both gets http/1.1.
    assert (answer.version, answer.alpn) == ("TLSv1.3", "http/1.1")


def test_plain_http_on_the_tls_port_gets_a_clear_400(tls_gw, pki):
    ca, _, _ = pki
    with socket.create_connection(("127.0.0.1", tls_gw.tls_port), timeout=30) as sock:
        sock.sendall(b"GET /echo/plain HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = read_response(sock)
    assert resp is not None
    error = json.loads(resp.body)["error"]
    assert (resp.status, error["kind"]) == (400, "plain_http_to_tls_port")
    assert "https://" in error["message"]
    # Other clients are not affected.
    assert tls_get(tls_gw.tls_port, "a.test", "/echo/after", client_context(ca.cert)).status == 200


def test_plain_and_tls_listeners_serve_at_once_and_redirect(tls_gw, pki):
    ca, _, _ = pki
    assert get(tls_gw.url("/echo/plain")).status == 200
    resp = get(tls_gw.url("/secure/page?x=1"), headers={"Host": "a.test:8080"})
    assert resp.status == 308
    assert resp.headers["location"] == "https://a.test/secure/page?x=1"
    # Over TLS the same route is served.
    answer = tls_get(tls_gw.tls_port, "a.test", "/secure/page", client_context(ca.cert))
    assert answer.status == 200


def test_call_records_carry_tls_version_sni_and_alpn(tls_gw, pki):
    ca, _, _ = pki
    v12 = client_context(ca.cert, maximum_version=ssl.TLSVersion.TLSv1_2)
    tls12 = tls_get(tls_gw.tls_port, "x.wild.test", "/echo/rec", v12)
    nosni = tls_get(tls_gw.tls_port, None, "/echo/rec", client_context())
    plain = get(tls_gw.url("/echo/rec"))
    ids = [tls12.headers["x-request-id"], nosni.headers["x-request-id"]]
    ids.append(plain.headers["x-request-id"])
    records = tls_gw.records(ids)
    fields = [
        (records[i]["tls_version"], records[i]["tls_sni"], records[i]["tls_alpn"]) for i in ids
    ]
    assert fields == [
        ("TLSv1.2", "x.wild.test", "http/1.1"),
        ("TLSv1.3", "", "http/1.1"),
        ("", "", ""),
    ]


def test_the_plain_refusal_is_recorded(tls_gw):
    with socket.create_connection(("127.0.0.1", tls_gw.tls_port), timeout=30) as sock:
        sock.sendall(b"GET /x HTTP/1.1\r\nHost: a.test\r\n\r\n")
        resp = read_response(sock)
    assert resp is not None
    record = tls_gw.records([resp.headers["x-request-id"]])[resp.headers["x-request-id"]]
    assert (record["status"], record["error_kind"]) == (400, "plain_http_to_tls_port")
