"""HTTP/2 over TLS: offered in ALPN ("h2" before "http/1.1"), served by the same pipeline,
recorded with protocol HTTP/2 and tls_alpn h2. Clients: curl --http2, httpx (h2)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess

import httpx
import pytest
from support.configs import simple_config
from support.gateway import Gateway, running
from support.net import free_port
from support.tls_certs import Ca, client_context, tls_get


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):
    ca = Ca(tmp_path_factory.mktemp("pki-h2"))
    return ca, ca.issue("site", "a.test", ["a.test"])


@pytest.fixture(scope="module")
def h2tls(tmp_path_factory, upstreams, pki):
    ca, site = pki
    port = free_port()
    config = simple_config(
        upstreams,
        listeners=[
            {
                "listen": f"127.0.0.1:{port}",
                "tls": {"certificates": [{"cert": str(site.cert), "key": str(site.key)}]},
            }
        ],
    )
    gw = Gateway(tmp_path_factory.mktemp("h2-tls-gw"), config)
    with running(gw):
        gw.tls_port = port
        yield gw


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_curl_negotiates_h2(h2tls, pki):
    ca, _ = pki
    port = h2tls.tls_port
    res = subprocess.run(
        ["curl", "-sS", "--http2", "--resolve", f"a.test:{port}:127.0.0.1", "--cacert",
         str(ca.cert), "-w", "\n%{http_code} %{http_version}", f"https://a.test:{port}/echo/c"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    body, _, tail = res.stdout.rpartition("\n")
    assert tail == "200 2"
    assert json.loads(body)["path"] == "/echo/c"


def test_http1_clients_still_get_http1(h2tls, pki):
    ca, _ = pki
    only_h1 = client_context(ca.cert, alpn=["http/1.1"])
    answer = tls_get(h2tls.tls_port, "a.test", "/echo/one", only_h1)
    assert (answer.status, answer.alpn) == (200, "http/1.1")


def test_h2_records_protocol_and_alpn(h2tls, pki):
    ca, _ = pki
    context = ssl.create_default_context(cafile=str(ca.cert))
    transport = httpx.HTTPTransport(http2=True, verify=context)
    port = h2tls.tls_port
    with httpx.Client(transport=transport, timeout=30) as client:
        # The name in the URL is the certificate's; the connection goes to 127.0.0.1.
        resp = client.get(
            f"https://127.0.0.1:{port}/echo/rec",
            extensions={"sni_hostname": "a.test"},
            headers={"host": f"a.test:{port}"},
        )
    assert resp.http_version == "HTTP/2" and resp.status_code == 200
    rid = resp.headers["x-request-id"]
    record = h2tls.records([rid])[rid]
    assert (record["protocol"], record["tls_alpn"], record["tls_version"]) == (
        "HTTP/2",
        "h2",
        "TLSv1.3",
    )
