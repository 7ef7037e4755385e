"""The admin listener is closed by default: with no token configured, the gateway
generates one at first start (printed once, kept in a 0600 file, reused later), and
only `admin.auth: none` on a loopback listen opens it."""

from __future__ import annotations

import stat

from support.admin_api import AdminApi
from support.configs import simple_config
from support.gateway import Gateway, run_cli

TOKEN_FILE = "pygate-admin.token"


def open_paths(gw: Gateway, token: str | None) -> dict[str, int]:
    api = AdminApi(gw, token)
    paths = ["/status", "/consumers", "/config", "/metrics", "/logs/reports", "/audit"]
    answers = {path: api.get(path)[0] for path in paths}
    answers["POST /logs/query"] = api.post("/logs/query", {"sql": "SELECT 1"})[0]
    answers["POST /routes"] = api.post("/routes", {"name": "x", "paths": ["/x"],
                                                   "upstream": "echo"})[0]  # fmt: skip
    return answers


def test_no_token_configured_generates_one(make_gateway, upstreams):
    cfg = simple_config(upstreams)
    cfg["consumers"] = [{"name": "alice", "keys": ["alice-token-test-key"]}]
    gw = make_gateway(cfg)
    token_file = gw.workdir / TOKEN_FILE
    mode = stat.S_IMODE(token_file.stat().st_mode)
    assert mode == 0o600, oct(mode)
    token = token_file.read_text().strip()
    assert len(token) >= 32

    # Without it (or with a wrong one) nothing answers but 401, reads and writes alike.
    for presented in (None, "wrong", token[:-1], token + "x", f"{token} extra"):
        answers = open_paths(gw, presented)
        assert set(answers.values()) == {401}, (presented, answers)
    assert AdminApi(gw, token).get("/status")[0] == 200

    # Printed once, at the start that made it; the CLI finds it by itself.
    assert gw.log_text().count(token) == 2  # the token line and the dashboard URL
    assert "generated one, stored in" in gw.log_text()
    res = gw.cli("status", "--json")
    assert res.returncode == 0, res.stderr
    res = run_cli("logs", "query", "--config", str(gw.config_path), "SELECT 1 AS one")
    assert res.returncode == 0 and "one" in res.stdout, res.stderr

    # A restart reuses it and does not print it again.
    assert gw.stop() == 0
    gw.start()
    assert token_file.read_text().strip() == token
    assert gw.log_text().count(token) == 2
    assert AdminApi(gw, token).get("/status")[0] == 200
    assert AdminApi(gw, None).get("/status")[0] == 401


def test_a_configured_token_is_used_and_no_file_is_made(make_gateway, upstreams):
    gw = make_gateway(simple_config(upstreams, admin={"token": "configured-admin-token"}))
    assert not (gw.workdir / TOKEN_FILE).exists()
    assert AdminApi(gw, "configured-admin-token").get("/status")[0] == 200
    assert AdminApi(gw, None).get("/status")[0] == 401
    assert "configured-admin-token" not in gw.log_text()


def test_token_file_readable_by_others_is_refused(tmp_path, upstreams):
    gw = Gateway(tmp_path / "gw", simple_config(upstreams))
    token_file = gw.workdir / TOKEN_FILE
    token_file.write_text("a-token-that-others-can-read-0123456789\n")
    token_file.chmod(0o644)
    gw.config["listen"] = "127.0.0.1:9"
    gw.config["admin"]["listen"] = "127.0.0.1:1"  # nothing answers: never reached
    gw.write_config()
    res = run_cli("serve", "--config", str(gw.config_path), timeout=60)
    assert res.returncode == 1
    assert "chmod 600" in res.stderr and str(token_file) in res.stderr
    assert "a-token-that-others-can-read" not in res.stderr
    # The CLI refuses to send it too (exit 2: a config problem, not a failure).
    res = gw.cli("status")
    assert res.returncode == 2 and "chmod 600" in res.stderr


def test_auth_none_opens_a_loopback_listener(make_gateway, upstreams):
    gw = make_gateway(simple_config(upstreams, admin={"auth": "none"}))
    assert not (gw.workdir / TOKEN_FILE).exists()
    answers = open_paths(gw, None)
    assert answers["/status"] == 200 and answers["POST /routes"] == 201, answers
    assert gw.cli("status").returncode == 0


def test_auth_none_is_refused_where_others_can_connect(tmp_path, upstreams):
    for listen, extra in (
        ("0.0.0.0:9180", {}),
        ("[::]:9180", {}),
        ("192.0.2.10:9180", {}),
        ("127.0.0.1:9180", {"token": "x-token"}),
        ("127.0.0.1:9180", {"tokens": [{"name": "ops", "token": "ops-token"}]}),
    ):
        admin = {"auth": "none", "listen": listen, **extra}
        gw = Gateway(tmp_path / f"gw{abs(hash(str(admin)))}", simple_config(upstreams, admin=admin))
        gw.config["listen"] = "127.0.0.1:9"
        gw.write_config()
        res = run_cli("check", "--config", str(gw.config_path))
        assert res.returncode == 2, (admin, res.stdout, res.stderr)
        assert "admin.auth" in res.stderr or "admin.token" in res.stderr, res.stderr
        res = run_cli("serve", "--config", str(gw.config_path), timeout=60)
        assert res.returncode == 2, (admin, res.stderr)
