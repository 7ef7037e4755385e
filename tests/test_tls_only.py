"""A gateway with TLS listeners only (no plain `listen`): it serves, reloads, records
calls and shows its listeners in `pygate status`; listener sets that cannot work are
config errors naming the file, the field and what was expected."""

from __future__ import annotations

import copy

from support.configs import route, simple_config
from support.gateway import Gateway, run_cli, running
from support.net import free_port
from support.tls_certs import Ca, client_context, tls_get


def _tls(ca: Ca) -> dict:
    site = ca.issue("site", "a.test", ["a.test"])
    return {"certificates": [{"cert": str(site.cert), "key": str(site.key)}]}


def test_a_gateway_with_only_an_https_listener_serves_reloads_and_records(tmp_path, upstreams):
    ca = Ca(tmp_path / "pki")
    port = free_port()
    listeners = [{"listen": f"127.0.0.1:{port}", "tls": _tls(ca)}]
    config = simple_config(upstreams, listen=None, listeners=listeners)
    gw = Gateway(tmp_path / "gw", config)
    ctx = client_context(ca.cert)
    with running(gw):
        assert "listen" not in gw.config
        first = tls_get(port, "a.test", "/echo/only-tls", ctx)
        assert first.status == 200 and first.version == "TLSv1.3"
        assert tls_get(port, "a.test", "/more/x", ctx).status == 404

        assert gw.status()["listeners"] == [f"https://127.0.0.1:{port}"]
        shown = gw.cli("status")
        assert shown.returncode == 0, shown.stderr
        assert f"https://127.0.0.1:{port}" in shown.stdout

        # A reload (a new route) keeps the TLS-only listener set.
        changed = copy.deepcopy(gw.config)
        changed["routes"].append(route("more", ["/more/*"], "echo"))
        gw.write_config(changed)
        assert gw.reload() == "reloaded"
        second = tls_get(port, "a.test", "/more/after-reload", ctx)
        assert second.status == 200

        ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
        records = gw.records(ids)
        assert [(records[i]["status"], records[i]["tls_version"]) for i in ids] == [
            (200, "TLSv1.3"),
            (200, "TLSv1.3"),
        ]
        assert records[ids[1]]["route"] == "more"


def test_mixed_listeners_without_listen_serve_both(tmp_path, upstreams):
    ca = Ca(tmp_path / "pki")
    tls_port, plain_port = free_port(), free_port()
    listeners = [
        {"listen": f"127.0.0.1:{tls_port}", "tls": _tls(ca)},
        {"listen": f"127.0.0.1:{plain_port}"},
    ]
    gw = Gateway(tmp_path / "gw", simple_config(upstreams, listen=None, listeners=listeners))
    with running(gw):
        assert tls_get(tls_port, "a.test", "/echo/1", client_context(ca.cert)).status == 200
        from support.client import get

        assert get(f"http://127.0.0.1:{plain_port}/echo/2").status == 200
        assert gw.status()["listeners"] == [
            f"https://127.0.0.1:{tls_port}",
            f"http://127.0.0.1:{plain_port}",
        ]


def _check(tmp_path, config: dict):
    gw = Gateway(tmp_path / "check", config)
    gw.config["admin"]["listen"] = "127.0.0.1:9180"
    gw.write_config()
    return gw, run_cli("check", "--config", str(gw.config_path))


def test_no_listener_at_all_is_a_config_error(tmp_path, upstreams):
    gw, res = _check(tmp_path, simple_config(upstreams, listen=None))
    assert res.returncode != 0
    assert str(gw.config_path) in res.stderr
    assert "listen" in res.stderr
    assert "expected a listen address (host:port) or at least one entry in listeners" in res.stderr


def test_ai_route_tools_need_a_plain_listener(tmp_path, upstreams):
    ca = Ca(tmp_path / "pki")
    listeners = [{"listen": "127.0.0.1:8443", "tls": _tls(ca)}]
    config = simple_config(upstreams, listen=None, listeners=listeners)
    config["ai"] = {
        "listen": "127.0.0.1:8090",
        "mcp": {"routes": [{"name": "echo", "path": "/echo/tool"}]},
    }
    gw, res = _check(tmp_path, config)
    assert res.returncode != 0
    assert str(gw.config_path) in res.stderr
    assert "ai.mcp.routes" in res.stderr
    assert "expected `listen` or a listeners entry without tls" in res.stderr


def test_the_same_port_twice_among_tls_listeners_is_a_config_error(tmp_path, upstreams):
    ca = Ca(tmp_path / "pki")
    tls = _tls(ca)
    listeners = [{"listen": "127.0.0.1:8443", "tls": tls}, {"listen": "127.0.0.1:8443", "tls": tls}]
    gw, res = _check(tmp_path, simple_config(upstreams, listen=None, listeners=listeners))
    assert res.returncode != 0
    assert str(gw.config_path) in res.stderr
    assert "listeners[1].listen" in res.stderr and "each listener needs its own port" in res.stderr
