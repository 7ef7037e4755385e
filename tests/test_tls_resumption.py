"""TLS session resumption survives a config reload that renews the certificate: the
listener keeps its session ticket keys (TLS 1.3) and its session cache (TLS 1.2), as
nginx's do. A reload that changes who may present client certificates starts afresh."""

from __future__ import annotations

import shutil
import socket
import ssl

import pytest
from support.client import read_response
from support.configs import simple_config
from support.gateway import Gateway, running
from support.net import free_port
from support.tls_certs import Ca, client_context


def _get(port: int, ctx: ssl.SSLContext, session: ssl.SSLSession | None = None):
    """One GET over a new connection: (status, session to resume with, was it resumed)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test", session=session) as tls:
            tls.sendall(b"GET /echo/r HTTP/1.1\r\nHost: a.test\r\nConnection: close\r\n\r\n")
            resp = read_response(tls)
            assert resp is not None
            # TLS 1.3 tickets arrive after the handshake: read to the end first.
            return resp.status, tls.session, tls.session_reused


def _config(upstreams, cert, key, port: int, client_ca=None) -> dict:
    tls: dict = {"certificates": [{"cert": str(cert), "key": str(key)}]}
    if client_ca is not None:
        tls["client_auth"] = {"ca": str(client_ca), "required": False}
    listeners = [{"listen": f"127.0.0.1:{port}", "tls": tls}]
    return simple_config(upstreams, listen=None, listeners=listeners)


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_sessions_resume_across_a_certificate_reload(tmp_path, upstreams, version):
    ca = Ca(tmp_path / "pki")
    first, renewed = ca.issue("first", "a.test", ["a.test"]), ca.issue("new", "a.test", ["a.test"])
    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first.cert, cert)
    shutil.copy(first.key, key)
    port = free_port()
    gw = Gateway(tmp_path / "gw", _config(upstreams, cert, key, port))
    ctx = client_context(ca.cert, minimum_version=version, maximum_version=version)
    with running(gw):
        status, session, reused = _get(port, ctx)
        assert (status, reused) == (200, False)
        status, session, reused = _get(port, ctx, session)
        assert (status, reused) == (200, True), "no resumption even before the reload"

        shutil.copy(renewed.cert, cert)
        shutil.copy(renewed.key, key)
        assert gw.reload() == "reloaded"
        status, session, reused = _get(port, ctx, session)
        assert (status, reused) == (200, True), "the reload threw the session keys away"
        # A full handshake now shows the renewed certificate.
        status, _, reused = _get(port, ctx)
        assert (status, reused) == (200, False)


def test_a_new_client_ca_does_not_resume_old_sessions(tmp_path, upstreams):
    ca, other_ca = Ca(tmp_path / "pki"), Ca(tmp_path / "pki2", name="other CA")
    site = ca.issue("site", "a.test", ["a.test"])
    port = free_port()
    gw = Gateway(tmp_path / "gw", _config(upstreams, site.cert, site.key, port, ca.cert))
    ctx = client_context(ca.cert)
    with running(gw):
        _, session, _ = _get(port, ctx)
        assert _get(port, ctx, session)[2] is True
        gw.write_config(_config(upstreams, site.cert, site.key, port, other_ca.cert))
        assert gw.reload() == "reloaded"
        status, _, reused = _get(port, ctx, session)
        assert (status, reused) == (200, False)
