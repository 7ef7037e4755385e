"""Upstreams over TLS (`scheme: https`) and HTTP/2 (`protocol: h2` / `h2c`), behind an
HTTP/1.1 client: real upstreams on 127.0.0.1 with certificates made here."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest
import yaml
from support.client import TIMEOUT, afetch, assert_json_error, fetch, get
from support.configs import route, upstream
from support.gateway import run_cli
from support.net import free_port
from support.tls_certs import Ca, issue
from support.tls_upstream import EchoUpstream

NAME = "upstream.test"


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> Ca:
    return Ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def leaf(ca: Ca, tmp_path_factory: pytest.TempPathFactory):
    """Valid for upstream.test and 127.0.0.1, signed by `ca`."""
    return issue(tmp_path_factory.mktemp("leaf"), [NAME, "127.0.0.1"], ca)


def one_route(u: dict, **top) -> dict:
    return {"workers": 1, "upstreams": [u], "routes": [route("r", ["/r/*"], u["name"])], **top}


def test_https_upstream_verified_against_ca_file_with_sni(make_gateway, ca, leaf):
    with EchoUpstream(leaf.cert, leaf.key) as up:
        gw = make_gateway(
            one_route(upstream("tls", [up.addr], scheme="https", ca_file=str(ca.cert), sni=NAME))
        )
        for i in range(3):
            resp = get(gw.url(f"/r/x{i}"))
            assert resp.status == 200, resp.body
            seen = resp.json()
            assert seen["tls"] is True
            assert seen["sni"] == NAME, seen
            assert seen["protocol"] == "http/1.1"
            assert seen["path"] == f"/r/x{i}"
        # Keep-alive: three requests, one TLS handshake.
        assert up.seen.sni == [NAME]


def test_ca_file_is_relative_to_the_config_file(make_gateway, ca, leaf, tmp_path: Path):
    gw_dir = tmp_path / "gw"
    gw_dir.mkdir()
    (gw_dir / "upstream-ca.pem").write_bytes(ca.cert.read_bytes())
    with EchoUpstream(leaf.cert, leaf.key) as up:
        # The target's host (an IP address) is the name verified: the leaf names 127.0.0.1.
        gw = make_gateway(
            one_route(upstream("tls", [up.addr], scheme="https", ca_file="upstream-ca.pem"))
        )
        resp = get(gw.url("/r/ip"))
        assert resp.status == 200, resp.body
        assert resp.json()["tls"] is True
        # No SNI is sent for an IP address (RFC 6066 §3).
        assert up.seen.sni == [None]


def test_wrong_ca_is_502_upstream_tls(make_gateway, leaf, tmp_path: Path):
    other = Ca(tmp_path / "other", "some other CA")
    with EchoUpstream(leaf.cert, leaf.key) as up:
        gw = make_gateway(
            one_route(
                upstream(
                    "tls", [up.addr], scheme="https", ca_file=str(other.cert), sni=NAME, retries=0
                )
            )
        )
        resp = get(gw.url("/r/x"))
        assert_json_error(resp, 502, "upstream_tls")
        assert up.seen.requests == 0
        rid = resp.header("x-request-id")
        record = gw.records([rid])[rid]
        assert record["error_kind"] == "upstream_tls"
        assert record["status"] == 502


def test_h2_upstream_over_tls(make_gateway, ca, leaf):
    with EchoUpstream(leaf.cert, leaf.key) as up:
        gw = make_gateway(
            one_route(
                upstream(
                    "tls2", [up.addr], scheme="https", protocol="h2", ca_file=str(ca.cert), sni=NAME
                )
            )
        )
        for i in range(3):
            resp = get(gw.url(f"/r/h2-{i}?q=1"), headers={"x-client": "yes"})
            assert resp.status == 200, resp.body
            seen = resp.json()
            assert seen["protocol"] == "h2", seen
            assert seen["path"] == f"/r/h2-{i}?q=1"
            headers = dict(seen["headers"])
            assert headers[":scheme"] == "https"
            assert headers[":authority"] == up.addr
            assert headers["x-client"] == "yes"
            assert "host" not in headers
        # One multiplexed connection carries them all.
        assert up.seen.sni == [NAME]
        assert up.seen.connections == 1


def test_h2c_upstream(make_gateway):
    with EchoUpstream(h2_only=True) as up:
        gw = make_gateway(one_route(upstream("clear2", [up.addr], protocol="h2c")))
        bodies = [f"payload-{i}" for i in range(3)]
        for body in bodies:
            resp = fetch("POST", gw.url("/r/post"), data=body)
            assert resp.status == 200, resp.body
            seen = resp.json()
            assert seen["tls"] is False
            assert seen["protocol"] == "h2"
            assert seen["method"] == "POST"
            assert seen["body"] == body
            assert dict(seen["headers"])[":scheme"] == "http"
        assert up.seen.connections == 1


def test_tls_verify_false_is_logged_once_at_load(make_gateway, tmp_path: Path):
    self_signed = issue(tmp_path / "ss", ["somewhere.else"])
    with EchoUpstream(self_signed.cert, self_signed.key) as up:
        gw = make_gateway(
            one_route(upstream("insecure", [up.addr], scheme="https", tls_verify=False))
        )
        assert get(gw.url("/r/a")).status == 200
        assert get(gw.url("/r/b")).status == 200
        line = 'upstream "insecure": tls_verify is false'
        assert gw.log_count(line) == 1, gw.log_text()[-2000:]


@pytest.mark.parametrize(
    ("extra", "field", "message"),
    [
        ({"protocol": "h2"}, "protocol", "needs scheme: https"),
        ({"scheme": "https", "protocol": "h2c"}, "protocol", "h2c is HTTP/2 without TLS"),
        ({"sni": "a.test"}, "sni", "only applies with scheme: https"),
        ({"tls_verify": False}, "tls_verify", "only applies with scheme: https"),
        ({"scheme": "https", "ca_file": "missing.pem"}, "ca_file", "does not exist"),
        ({"scheme": "ftp"}, "scheme", "http"),
    ],
)
def test_bad_transport_settings_name_the_field(tmp_path: Path, extra, field, message):
    cfg = one_route(upstream("u", ["127.0.0.1:9"], **extra), listen="127.0.0.1:0")
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("check", "--config", str(path))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert f"upstreams[0].{field}" in out, out
    assert message in out, out


def test_ca_file_that_is_not_pem_is_a_config_error(tmp_path: Path):
    (tmp_path / "bad.pem").write_text("not a certificate\n")
    cfg = one_route(
        upstream("u", ["127.0.0.1:9"], scheme="https", ca_file="bad.pem"), listen="127.0.0.1:0"
    )
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("check", "--config", str(path))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert "upstreams[0].ca_file" in out, out
    assert "PEM" in out, out


def test_reload_with_a_new_ca_file_content_takes_effect(make_gateway, ca, leaf, tmp_path: Path):
    # Same path, new content: connections made under the old roots are not reused.
    gw_dir_ca = tmp_path / "roots.pem"
    gw_dir_ca.write_bytes(Ca(tmp_path / "wrong", "wrong CA").cert.read_bytes())
    with EchoUpstream(leaf.cert, leaf.key) as up:
        cfg = one_route(
            upstream("tls", [up.addr], scheme="https", ca_file=str(gw_dir_ca), sni=NAME, retries=0)
        )
        gw = make_gateway(cfg)
        assert_json_error(get(gw.url("/r/before")), 502, "upstream_tls")
        gw_dir_ca.write_bytes(ca.cert.read_bytes())
        assert gw.reload() == "reloaded"
        resp = get(gw.url("/r/after"))
        assert resp.status == 200, resp.body
        assert resp.json()["sni"] == NAME


def test_tls_verify_false_is_logged_again_at_reload(make_gateway, tmp_path: Path):
    self_signed = issue(tmp_path / "ss", ["somewhere.else"])
    with EchoUpstream(self_signed.cert, self_signed.key) as up:
        gw = make_gateway(
            one_route(upstream("insecure", [up.addr], scheme="https", tls_verify=False))
        )
        line = 'upstream "insecure": tls_verify is false'
        assert gw.log_count(line) == 1
        assert gw.reload() == "reloaded"
        assert gw.log_count(line) == 2


def test_concurrent_calls_share_one_http2_connection(make_gateway):
    with EchoUpstream(h2_only=True) as up:
        gw = make_gateway(one_route(upstream("clear2", [up.addr], protocol="h2c")))

        async def burst() -> list[int]:
            # Each request on its own client connection, all at once: the first to need the
            # upstream connects, the others wait for that connection instead of opening theirs.
            async def one(i: int) -> int:
                async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                    return (await afetch(session, "GET", gw.url(f"/r/{i}"))).status

            return await asyncio.gather(*(one(i) for i in range(16)))

        assert asyncio.run(burst()) == [200] * 16
        assert up.seen.requests == 16
        assert up.seen.connections == 1


def test_concurrent_calls_to_a_dead_http2_target_all_fail_cleanly(make_gateway):
    dead = f"127.0.0.1:{free_port()}"
    gw = make_gateway(one_route(upstream("dead2", [dead], protocol="h2c", retries=0)))

    async def burst() -> list[int]:
        async def one(i: int):
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                return await afetch(session, "GET", gw.url(f"/r/{i}"))

        return await asyncio.gather(*(one(i) for i in range(8)))

    for resp in asyncio.run(burst()):
        assert_json_error(resp, 502, "upstream_unavailable")
    # And the next call tries again rather than inheriting an old failure.
    assert_json_error(get(gw.url("/r/again")), 502, "upstream_unavailable")
