"""The mtls plugin and client certificates (mTLS) per listener: the `mtls` auth kind makes
the verified subject the route's consumer."""

from __future__ import annotations

import json
import ssl

import pytest
from support.client import get
from support.configs import route, simple_config
from support.gateway import Gateway, run_cli, running
from support.net import free_port
from support.tls_certs import Ca, client_context, tls_get


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    base = tmp_path_factory.mktemp("mtls-pki")
    servers, clients, strangers = (
        Ca(base / "s", "server CA"),
        Ca(base / "c", "client CA"),
        Ca(base / "x", "other CA"),
    )
    return {
        "servers": servers,
        "site": servers.issue("site", "a.test", ["a.test"]),
        "clients": clients,
        "alice": clients.issue("alice", "alice", client=True),
        "mallory": strangers.issue("mallory", "alice", client=True),
    }


@pytest.fixture(scope="module")
def mtls_gw(tmp_path_factory, upstreams, pki):
    cert = {"cert": str(pki["site"].cert), "key": str(pki["site"].key)}
    ca = str(pki["clients"].cert)
    required, optional = free_port(), free_port()
    config = simple_config(
        upstreams,
        listeners=[
            {"listen": f"127.0.0.1:{required}",
             "tls": {"certificates": [cert], "client_auth": {"ca": ca}}},
            {"listen": f"127.0.0.1:{optional}",
             "tls": {"certificates": [cert], "client_auth": {"ca": ca, "required": False}}},
        ],
    )  # fmt: skip
    config["routes"].append(route("who", ["/who/*"], "echo", plugins={"mtls": {}}))
    gw = Gateway(tmp_path_factory.mktemp("mtls-gw"), config)
    with running(gw):
        gw.required_port, gw.optional_port = required, optional
        yield gw


def _ctx(pki, client=None) -> ssl.SSLContext:
    options = {"client": pki[client]} if client else {}
    return client_context(pki["servers"].cert, **options)


def test_the_verified_subject_is_the_consumer(mtls_gw, pki):
    answer = tls_get(mtls_gw.required_port, "a.test", "/who/me", _ctx(pki, "alice"))
    assert answer.status == 200
    headers = {k.lower(): v for k, v in json.loads(answer.body)["headers"]}
    assert headers["x-consumer-username"] == "alice"
    rid = answer.headers["x-request-id"]
    assert mtls_gw.records([rid])[rid]["consumer"] == "alice"


@pytest.mark.parametrize("client", [None, "mallory"])
def test_required_client_certificates_refuse_none_and_strangers(mtls_gw, pki, client):
    # TLS 1.3 sends the server's refusal after the client thinks it is done, so it may
    # surface on the first read rather than in the handshake.
    with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
        tls_get(mtls_gw.required_port, "a.test", "/echo/x", _ctx(pki, client))
    assert tls_get(mtls_gw.required_port, "a.test", "/who/x", _ctx(pki, "alice")).status == 200


def test_optional_client_certificates_and_the_mtls_route(mtls_gw, pki):
    port = mtls_gw.optional_port
    assert tls_get(port, "a.test", "/echo/x", _ctx(pki)).status == 200
    anonymous = tls_get(port, "a.test", "/who/x", _ctx(pki))
    assert anonymous.status == 401
    assert "client certificate" in json.loads(anonymous.body)["error"]["message"]
    assert tls_get(port, "a.test", "/who/x", _ctx(pki, "alice")).status == 200
    # A certificate from a CA the listener does not trust is refused, not ignored.
    with pytest.raises((ssl.SSLError, ConnectionError, AssertionError)):
        tls_get(port, "a.test", "/who/x", _ctx(pki, "mallory"))
    # Over plain HTTP there is no certificate at all.
    assert get(mtls_gw.url("/who/x")).status == 401


def test_mtls_without_a_client_auth_listener_is_a_config_error(tmp_path, upstreams):
    config = simple_config(upstreams, listen="127.0.0.1:8080")
    config["routes"].append(route("who", ["/who/*"], "echo", plugins={"mtls": {}}))
    gw = Gateway(tmp_path, config)
    gw.config["admin"]["listen"] = "127.0.0.1:9180"
    gw.write_config()
    res = run_cli("check", "--config", str(gw.config_path))
    assert res.returncode != 0
    assert "routes[1].plugins.mtls" in res.stderr and "tls.client_auth" in res.stderr
