"""Attacks on the TLS listener: protocol downgrade, handshakes without SNI or with an
unknown one, plaintext and garbage on the TLS port, unreadable certificate and key
files, and hunting for the private key in errors, logs and the admin API."""

from __future__ import annotations

import base64
import socket
import ssl
import warnings

import pytest
from support.configs import simple_config
from support.gateway import Gateway, run_cli, running
from support.net import free_port
from support.tls_certs import Ca, client_context, tls_get


def _key_material(path) -> list[str]:
    """Pieces of a PEM key file an error or log line could leak: its base64 lines."""
    lines = path.read_text().splitlines()
    return [line for line in lines if line and not line.startswith("-----")]


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    ca = Ca(tmp_path_factory.mktemp("pki"))
    return ca, ca.issue("site", "a.test", ["a.test"])


@pytest.fixture(scope="module")
def tls_gw(tmp_path_factory, upstreams, pki):
    _, site = pki
    tls = {"certificates": [{"cert": str(site.cert), "key": str(site.key)}]}
    port = free_port()
    config = simple_config(upstreams, listeners=[{"listen": f"127.0.0.1:{port}", "tls": tls}])
    gw = Gateway(tmp_path_factory.mktemp("sec-tls"), config)
    with running(gw):
        gw.tls_port = port
        yield gw


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_downgrade_to_tls_1_0_and_1_1_is_refused_by_the_server(tls_gw, pki, version):
    ca, _ = pki
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca.cert)
    # Let the client offer the old protocol, so that the refusal is the server's alert.
    ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ctx.minimum_version = ssl.TLSVersion.TLSv1
        ctx.maximum_version = getattr(ssl.TLSVersion, version)
    with socket.create_connection(("127.0.0.1", tls_gw.tls_port), timeout=30) as raw:
        with pytest.raises(ssl.SSLError, match="ALERT"):
            ctx.wrap_socket(raw, server_hostname="a.test")
    assert tls_get(tls_gw.tls_port, "a.test", "/echo/ok", client_context(ca.cert)).status == 200


def test_no_sni_and_unknown_sni_get_the_default_certificate_only(tls_gw, pki):
    # nginx's default_server: the first certificate, which names none of these, so a
    # verifying client stops there; nothing else is served for them.
    ca, _ = pki
    for name in (None, "evil.test", "a.test.evil.test"):
        assert tls_get(tls_gw.tls_port, name, "/echo/x", client_context()).server_cn == "a.test"
        if name:
            with pytest.raises(ssl.SSLCertVerificationError):
                tls_get(tls_gw.tls_port, name, "/echo/x", client_context(ca.cert))


@pytest.mark.parametrize(
    "payload", [b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", b"\x00\x01\x02garbage\r\n\r\n"]
)
def test_plaintext_and_garbage_on_the_tls_port(tls_gw, pki, payload):
    ca, _ = pki
    with socket.create_connection(("127.0.0.1", tls_gw.tls_port), timeout=30) as sock:
        sock.sendall(payload)
        try:
            answer = sock.recv(4096)
        except ConnectionResetError:
            answer = b""
    if payload.startswith(b"GET"):
        assert answer.startswith(b"HTTP/1.1 400") and b"plain_http_to_tls_port" in answer
    else:
        assert answer == b""  # no TLS record, no HTTP: closed without an answer
    assert tls_get(tls_gw.tls_port, "a.test", "/echo/ok", client_context(ca.cert)).status == 200


def _check_config(tmp_path, upstreams, cert, key):
    tls = {"certificates": [{"cert": str(cert), "key": str(key)}]}
    gw = Gateway(tmp_path, simple_config(upstreams, listen="127.0.0.1:8080"))
    gw.config["listeners"] = [{"listen": "127.0.0.1:8443", "tls": tls}]
    gw.config["admin"]["listen"] = "127.0.0.1:9180"
    gw.write_config()
    return run_cli("check", "--config", str(gw.config_path))


def test_unreadable_certificate_or_key_file_is_named(tmp_path, upstreams, pki):
    _, site = pki
    # Root reads any mode, so "unreadable" is a directory in the file's place.
    unreadable = tmp_path / "unreadable.pem"
    unreadable.mkdir()
    for cert, key, field in (
        (unreadable, site.key, "certificates[0].cert"),
        (site.cert, unreadable, "certificates[0].key"),
    ):
        res = _check_config(tmp_path / field, upstreams, cert, key)
        assert res.returncode != 0
        assert field in res.stderr and "cannot read the" in res.stderr
        assert str(unreadable) in res.stderr


def test_private_key_never_in_errors_logs_or_admin_api(tmp_path, upstreams, pki):
    ca, site = pki
    other = ca.issue("other", "b.test", ["b.test"])
    secret_lines = _key_material(site.key) + _key_material(other.key)
    # A "key" file whose PEM body is damaged: its bytes must not be quoted either.
    damaged = tmp_path / "damaged.key"
    body = base64.b64encode(b"TOPSECRETKEYBYTES" * 4).decode()
    damaged.write_text(f"-----BEGIN PRIVATE KEY-----\n{body}\n-----END RSA KEY-----\n")
    secret_lines.append(body)
    outputs = []
    for key in (other.key, damaged, site.cert):
        res = _check_config(tmp_path / f"check-{key.name}", upstreams, site.cert, key)
        assert res.returncode != 0
        outputs.append(res.stdout + res.stderr)

    port = free_port()
    tls = {"certificates": [{"cert": str(site.cert), "key": str(site.key)}]}
    config = simple_config(upstreams, listeners=[{"listen": f"127.0.0.1:{port}", "tls": tls}])
    gw = Gateway(tmp_path / "gw", config)
    with running(gw):
        assert tls_get(port, "a.test", "/echo/k", client_context(ca.cert)).status == 200
        exported = gw.admin_text("/config")  # the config as YAML
        assert "upstreams:" in exported
        outputs.append(exported)
        outputs.append(gw.cli("status", "--json").stdout)
        # A reload with a mismatched key is refused; the log names files only.
        gw.config["listeners"][0]["tls"]["certificates"][0]["key"] = str(other.key)
        gw.write_config()
        assert gw.reload() == "refused"
        outputs.append(gw.log_text())
    for text in outputs:
        for line in secret_lines:
            assert line not in text
