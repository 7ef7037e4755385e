"""`pygate status` counters, the admin token, `pygate version`."""

from __future__ import annotations

import re

from support.client import get
from support.configs import simple_config
from support.gateway import run_cli
from support.net import wait_until

CORE_KEYS = {
    "requests_total",
    "responses_1xx",
    "responses_2xx",
    "responses_3xx",
    "responses_4xx",
    "responses_5xx",
    "rate_limited_total",
    "upstream_errors_total",
    "records_dropped",
    "records_pending",
    "connections_active",
    "reloads_total",
}
PY_KEYS = {
    "log_rows_written",
    "log_batches_failed",
    "log_rows_pending_retry",
    "uptime_s",
    "config_file",
    "reloads_refused",
}


def test_status_counters_and_admin_token(make_gateway, upstreams):
    cfg = simple_config(upstreams, admin={"token": "s3cret-admin"})
    cfg["routes"].append(
        {
            "name": "limited",
            "paths": ["/limited/*"],
            "upstream": "echo",
            "plugins": {"rate-limit": {"rate": 1, "per": "60s", "by": "route"}},
        }
    )
    gw = make_gateway(cfg)

    # The admin listener refuses requests without the token.
    status, body = gw.admin_get("/status", token=None)
    assert status == 401, body
    status, body = gw.admin_get("/status", token="wrong")
    assert status == 401, body

    before = gw.status()
    assert CORE_KEYS | PY_KEYS <= set(before), set(before) ^ (CORE_KEYS | PY_KEYS)
    assert before["config_file"].endswith("gateway.yaml")

    statuses = [get(gw.url("/echo/a")).status for _ in range(3)]
    statuses += [get(gw.url("/nope")).status for _ in range(2)]
    statuses += [get(gw.url("/limited/x")).status for _ in range(2)]
    assert statuses == [200, 200, 200, 404, 404, 200, 429]

    after = wait_until(
        lambda: (s := gw.status())["log_rows_written"] >= before["log_rows_written"] + 7 and s,
        60,
        interval=0.3,
        what="log_rows_written to grow by 7",
    )
    delta = {k: after[k] - before[k] for k in CORE_KEYS if k != "connections_active"}
    assert delta["requests_total"] == 7, delta
    assert delta["responses_2xx"] == 4, delta
    assert delta["responses_4xx"] == 3, delta
    assert delta["responses_5xx"] == 0, delta
    assert delta["rate_limited_total"] == 1, delta
    assert after["records_dropped"] == 0
    assert after["log_batches_failed"] == 0
    assert after["uptime_s"] >= before["uptime_s"]

    # The human form prints the same counters.
    res = gw.cli("status")
    assert res.returncode == 0, res.stderr
    assert "requests_total" in res.stdout and "log_rows_written" in res.stdout


def test_status_without_a_running_gateway_fails_cleanly(tmp_path, upstreams):
    from support.gateway import Gateway

    gw = Gateway(tmp_path, simple_config(upstreams))
    gw.config["listen"] = "127.0.0.1:1"
    gw.config["admin"]["listen"] = "127.0.0.1:1"  # nothing listens on port 1
    gw.write_config()
    res = gw.cli("status")
    assert res.returncode != 0
    assert res.stderr.strip()


def test_version():
    res = run_cli("version")
    assert res.returncode == 0, res.stderr
    assert re.fullmatch(r"pygate \d+\.\d+\.\d+\S* \(core \d+\.\d+\.\d+\S*\)", res.stdout.strip())


def test_logging_off_keeps_counting_but_stores_nothing(make_gateway, upstreams):
    cfg = simple_config(upstreams, log={"enabled": False, "flush_interval": "100ms"})
    gw = make_gateway(cfg)
    assert [get(gw.url("/echo/off")).status for _ in range(5)] == [200] * 5
    status = gw.status()
    assert status["requests_total"] == 5
    assert status["responses_2xx"] == 5
    assert status["records_pending"] == 0
    assert status["records_dropped"] == 0
    assert status["log_rows_written"] == 0
    assert gw.logs_query("SELECT count() AS n FROM pygate.requests") == [{"n": 0}]


LOCAL_PLUGIN = """
import msgspec

from pygate.plugins.python import Plugin


class LocalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    value: str


class Local(Plugin):
    Config = LocalConfig

    async def access(self, request):
        request.headers["X-Local-Plugin"] = self.config.value
"""


def test_client_commands_do_not_import_plugin_modules(make_gateway, upstreams, tmp_path):
    """status, logs query/report and admin export talk to the gateway: they need its
    admin address and store, not its plugins, so a module plugin that is not on this
    shell's PYTHONPATH does not stop them. `check` still imports and validates it."""
    workdir = tmp_path / "gw"
    workdir.mkdir()
    # The gateway runs in its directory, where `python -m pygate` finds the module.
    (workdir / "item13_local_plugin.py").write_text(LOCAL_PLUGIN)
    cfg = simple_config(upstreams)
    cfg["routes"][0]["plugins"] = {"item13_local_plugin:Local": {"value": "ran"}}
    gw = make_gateway(cfg)
    assert get(gw.url("/echo/p")).upstream_headers()["x-local-plugin"] == "ran"

    elsewhere = tmp_path / "elsewhere"  # a shell whose PYTHONPATH lacks the module
    elsewhere.mkdir()
    config = str(gw.config_path)
    for args in (
        ["status", "--config", config],
        ["logs", "query", "--config", config, "SELECT 1 AS one"],
        ["logs", "report", "traffic", "--config", config, "--since", "5m"],
        ["admin", "export", "--config", config],
    ):
        res = run_cli(*args, cwd=elsewhere)
        assert res.returncode == 0, (args, res.stderr)
    res = run_cli("check", "--config", config, cwd=elsewhere)
    assert res.returncode == 2 and "item13_local_plugin" in res.stderr, res.stderr
    assert run_cli("check", "--config", config, cwd=workdir).returncode == 0
