"""Attacks on the gateway's TLS connections to upstreams: someone on the path between the
gateway and an `https` upstream presents a certificate of their own. Every such
certificate is refused (502 upstream_tls, nothing sent to it in plain text) unless the
config turns verification off in so many words."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support.client import assert_json_error, get
from support.configs import route, upstream
from support.gateway import run_cli
from support.tls_certs import Ca, issue
from support.tls_upstream import EchoUpstream

NAME = "api.upstream.test"


def config_for(u: dict) -> dict:
    return {"workers": 1, "upstreams": [u], "routes": [route("r", ["/r/*"], u["name"])]}


def refused(gw, up: EchoUpstream) -> None:
    resp = get(gw.url("/r/secret?token=abc"), headers={"authorization": "Bearer abc"})
    assert_json_error(resp, 502, "upstream_tls")
    # The impostor completed no handshake, so it read no request.
    assert up.seen.requests == 0


@pytest.fixture
def ca(tmp_path: Path):
    return Ca(tmp_path / "ca")


def test_self_signed_upstream_is_refused_by_default(make_gateway, tmp_path: Path):
    # No ca_file: the system's roots, which do not hold a certificate made a moment ago.
    cert = issue(tmp_path / "ss", [NAME, "127.0.0.1"])
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(config_for(upstream("u", [up.addr], scheme="https", retries=0)))
        refused(gw, up)
        assert "tls_verify is false" not in gw.log_text()


def test_self_signed_upstream_is_refused_with_sni(make_gateway, tmp_path: Path):
    cert = issue(tmp_path / "ss", [NAME])
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(config_for(upstream("u", [up.addr], scheme="https", sni=NAME, retries=0)))
        refused(gw, up)
        assert up.seen.sni == [NAME]


def test_certificate_for_another_name_is_refused(make_gateway, ca, tmp_path: Path):
    # Signed by the trusted CA, but for a different host: a valid certificate of some
    # other service, replayed by whoever sits in between.
    cert = issue(tmp_path / "other", ["other.upstream.test"], ca)
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(
            config_for(
                upstream("u", [up.addr], scheme="https", ca_file=str(ca.cert), sni=NAME, retries=0)
            )
        )
        refused(gw, up)


def test_certificate_for_the_name_but_not_the_ip_is_refused(make_gateway, ca, tmp_path: Path):
    # Without sni the target's host (127.0.0.1) is what must be certified.
    cert = issue(tmp_path / "name-only", [NAME], ca)
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(
            config_for(upstream("u", [up.addr], scheme="https", ca_file=str(ca.cert), retries=0))
        )
        refused(gw, up)


def test_expired_certificate_is_refused(make_gateway, ca, tmp_path: Path):
    cert = issue(tmp_path / "expired", [NAME], ca, expired=True)
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(
            config_for(
                upstream("u", [up.addr], scheme="https", ca_file=str(ca.cert), sni=NAME, retries=0)
            )
        )
        refused(gw, up)


def test_a_leaf_is_no_ca(make_gateway, ca, tmp_path: Path):
    # ca_file naming the server's own (non-CA) certificate does not make it trusted.
    cert = issue(tmp_path / "leaf", [NAME], ca)
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(
            config_for(
                upstream(
                    "u", [up.addr], scheme="https", ca_file=str(cert.cert), sni=NAME, retries=0
                )
            )
        )
        refused(gw, up)


def test_plain_http_upstream_is_not_taken_for_tls(make_gateway):
    # An https upstream that answers in plain HTTP: no fallback to sending it in clear.
    with EchoUpstream() as up:
        gw = make_gateway(config_for(upstream("u", [up.addr], scheme="https", retries=0)))
        refused(gw, up)


@pytest.mark.parametrize("value", ["off", "false", 0, "0"])
def test_verification_is_only_turned_off_by_false_itself(tmp_path: Path, value):
    # Strings and numbers that read like "off" are refused, not taken as an opt-out (an
    # empty `tls_verify:` is the default, like any other field: verification on).
    cfg = config_for(upstream("u", ["127.0.0.1:9"], scheme="https", tls_verify=value))
    cfg["listen"] = "127.0.0.1:0"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("check", "--config", str(path))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "upstreams[0].tls_verify" in out, out


def test_opt_out_accepts_any_certificate_and_says_so(make_gateway, tmp_path: Path):
    cert = issue(tmp_path / "ss", ["whoever.test"])
    with EchoUpstream(cert.cert, cert.key) as up:
        gw = make_gateway(
            config_for(upstream("u", [up.addr], scheme="https", tls_verify=False, retries=0))
        )
        assert get(gw.url("/r/x")).status == 200
        assert gw.log_count('upstream "u": tls_verify is false') == 1
