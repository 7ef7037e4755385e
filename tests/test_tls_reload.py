"""Certificates reload with the config (SIGHUP here; --watch and the admin API swap the
same way) without dropping connections, and bad certificate files are config errors that
name the file, at start and on reload."""

from __future__ import annotations

import datetime
import shutil
import socket

import pytest
from cryptography import x509
from support.admin_api import AdminApi
from support.client import read_response
from support.configs import simple_config
from support.gateway import Gateway, run_cli, running
from support.net import free_port, wait_until
from support.tls_certs import NOW, Ca, client_context, tls_get


def _tls_config(upstreams, cert, key, port: int) -> dict:
    tls = {"certificates": [{"cert": str(cert), "key": str(key)}]}
    return simple_config(upstreams, listeners=[{"listen": f"127.0.0.1:{port}", "tls": tls}])


def _serial(tls) -> int:
    return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_reload_renews_certificates_for_new_handshakes_only(tmp_path, upstreams):
    ca = Ca(tmp_path / "pki")
    first = ca.issue("first", "a.test", ["a.test"])
    renewed = ca.issue("renewed", "a.test", ["a.test"])
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first.cert, live_cert)
    shutil.copy(first.key, live_key)
    port = free_port()
    gw = Gateway(tmp_path / "gw", _tls_config(upstreams, live_cert, live_key, port))
    ctx = client_context(ca.cert)
    with running(gw), socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname="a.test") as kept:
            assert _serial(kept) == first.certificate.serial_number
            kept.sendall(b"GET /echo/1 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert read_response(kept).status == 200

            shutil.copy(renewed.cert, live_cert)
            shutil.copy(renewed.key, live_key)
            assert gw.reload() == "reloaded"

            # The open connection goes on, on the session it negotiated.
            kept.sendall(b"GET /echo/2 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert read_response(kept).status == 200
            assert _serial(kept) == first.certificate.serial_number
            with socket.create_connection(("127.0.0.1", port), timeout=30) as raw2:
                with ctx.wrap_socket(raw2, server_hostname="a.test") as fresh:
                    assert _serial(fresh) == renewed.certificate.serial_number

            # An expired certificate is refused, naming the file; the renewed one stays.
            expired = ca.issue(
                "expired", "a.test", ["a.test"],
                not_before=NOW - datetime.timedelta(days=30),
                not_after=NOW - datetime.timedelta(days=1),
            )  # fmt: skip
            shutil.copy(expired.cert, live_cert)
            shutil.copy(expired.key, live_key)
            assert gw.reload() == "refused"
            refused = gw.log_text().rsplit("reload refused", 1)[1]
            assert str(live_cert) in refused and "expired" in refused
            assert tls_get(port, "a.test", "/echo/3", ctx).status == 200
            kept.sendall(b"GET /echo/4 HTTP/1.1\r\nHost: a.test\r\n\r\n")
            assert read_response(kept).status == 200


@pytest.fixture
def pki(tmp_path):
    ca = Ca(tmp_path / "pki")
    return ca, ca.issue("good", "a.test", ["a.test"]), ca.issue("other", "b.test", ["b.test"])


def _check(tmp_path, upstreams, cert, key):
    config = _tls_config(upstreams, cert, key, 8443)
    gw = Gateway(tmp_path / "check", config)
    gw.config["listen"] = "127.0.0.1:8080"
    gw.config["admin"]["listen"] = "127.0.0.1:9180"
    gw.write_config()
    return run_cli("check", "--config", str(gw.config_path))


def test_a_key_that_does_not_match_is_a_config_error_naming_both_files(tmp_path, upstreams, pki):
    _, good, other = pki
    res = _check(tmp_path, upstreams, good.cert, other.key)
    assert res.returncode != 0
    assert "listeners[0].tls.certificates[0].key" in res.stderr
    assert f"{other.key} does not match the certificate in {good.cert}" in res.stderr


def test_an_expired_or_future_certificate_is_a_config_error(tmp_path, upstreams, pki):
    ca, _, _ = pki
    day = datetime.timedelta(days=1)
    old = ca.issue("old", "a.test", ["a.test"], not_before=NOW - 9 * day, not_after=NOW - day)
    future = ca.issue("future", "a.test", ["a.test"], not_before=NOW + day)
    for issued, words in ((old, "expired on"), (future, "is not valid before")):
        res = _check(tmp_path, upstreams, issued.cert, issued.key)
        assert res.returncode != 0
        assert f"the certificate in {issued.cert}" in res.stderr and words in res.stderr
        assert "listeners[0].tls.certificates[0].cert" in res.stderr


def test_relative_paths_are_relative_to_the_config_file(tmp_path, upstreams, pki):
    _, good, _ = pki
    gwdir = tmp_path / "check"
    gwdir.mkdir()
    shutil.copy(good.cert, gwdir / "site.pem")
    shutil.copy(good.key, gwdir / "site.key")
    res = _check(tmp_path, upstreams, "site.pem", "site.key")
    assert res.returncode == 0, res.stderr


@pytest.mark.parametrize("trigger", ["watch", "admin-api"])
def test_watch_and_admin_api_swaps_renew_certificates_too(tmp_path, upstreams, trigger):
    ca = Ca(tmp_path / "pki")
    first = ca.issue("first", "a.test", ["a.test"])
    renewed = ca.issue("renewed", "a.test", ["a.test"])
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(first.cert, live_cert)
    shutil.copy(first.key, live_key)
    port = free_port()
    config = _tls_config(upstreams, live_cert, live_key, port)
    gw = Gateway(tmp_path / "gw", config, watch=trigger == "watch")
    ctx = client_context(ca.cert)

    def served_serial() -> int:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
            with ctx.wrap_socket(raw, server_hostname="a.test") as tls:
                return _serial(tls)

    with running(gw):
        assert served_serial() == first.certificate.serial_number
        shutil.copy(renewed.cert, live_cert)
        shutil.copy(renewed.key, live_key)
        if trigger == "watch":
            gw.write_config()  # saving the config file is what --watch reacts to
        else:
            body = {"name": "extra", "targets": [upstreams.addr("echo")]}
            AdminApi(gw).ok("POST", "/upstreams", body, status=201)
        wait_until(
            lambda: served_serial() == renewed.certificate.serial_number,
            60,
            what="the renewed certificate on new handshakes",
        )
