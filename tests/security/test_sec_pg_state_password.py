"""The Postgres password of `admin.state` never leaves the config file: not in a wrong-
password error, `pygate status` (text and JSON), admin API answers (the config export,
/status, a 503 while Postgres is down), nor the gateway's log lines. The password has a
percent-escape, so both its URL form and its decoded form are looked for."""

from __future__ import annotations

import copy

import pytest
import yaml
from support.admin_api import AdminApi
from support.gateway import run_cli
from support.net import free_port, wait_until
from support.postgres import PASSWORD, RAW_PASSWORD, PgCluster, pg_bin
from test_admin_api import admin_config

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="Debian's postgresql not installed")

WRONG = "Wr0ng-pg-pass-%2F-7731"


@pytest.fixture(scope="module")
def pg():
    cluster = PgCluster().start()
    yield cluster
    cluster.destroy()


def leaks(text: str, *secrets: str) -> list[str]:
    return [s for s in secrets if s in text]


def test_wrong_password_error_does_not_quote_it(tmp_path, upstreams, pg):
    cfg = admin_config(upstreams)
    cfg["admin"]["state"] = pg.url(password=WRONG)
    cfg["log"] = {"store": "chdb://./data"}
    cfg["listen"] = f"127.0.0.1:{free_port()}"
    cfg["admin"]["listen"] = f"127.0.0.1:{free_port()}"
    path = tmp_path / "gw.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("serve", "--config", str(path))
    assert res.returncode == 1
    output = res.stdout + res.stderr
    assert "password authentication failed" in output and "***" in output
    assert leaks(output, WRONG, WRONG.replace("%2F", "/")) == []


def test_password_absent_from_status_answers_and_logs(make_gateway, upstreams, pg):
    url = pg.create_db("sec_leak")
    cfg = admin_config(upstreams)
    cfg["admin"]["state"] = url
    gw = make_gateway(copy.deepcopy(cfg))
    api = AdminApi(gw)
    api.ok("POST", "/routes", {"name": "r", "paths": ["/r/*"], "upstream": "echo"}, 201)
    seen = [gw.cli("status").stdout, gw.cli("status", "--json").stdout]
    for path in ("/config", "/status", "/routes", "/audit"):
        code, answer = api.get(path)
        assert code == 200
        seen.append(str(answer))
    assert "postgresql://pygate:***@" in seen[0]

    pg.stop()
    try:
        wait_until(lambda: gw.status()["state_connected"] is False, timeout=15)
        code, answer = api.post("/routes", {"name": "x", "paths": ["/x/*"], "upstream": "echo"})
        assert code == 503
        seen += [str(answer), gw.cli("status").stdout]
    finally:
        pg.start()
    wait_until(lambda: gw.status()["state_connected"] is True, timeout=15)
    assert gw.stop() == 0
    log = gw.log_text()
    assert "admin state postgresql://pygate:***@" in log and "unreachable" in log
    seen.append(log)
    for text in seen:
        assert leaks(text, PASSWORD, RAW_PASSWORD) == [], text[:2000]
