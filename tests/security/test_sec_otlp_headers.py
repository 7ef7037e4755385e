"""The OTLP exporter's headers (collector auth tokens) are secrets: they go to the
collector and nowhere else. Not in the gateway's log, /status, /metrics, nor in a
config error about them (`pygate check` and reload answers share those messages)."""

from __future__ import annotations

import textwrap

from support.client import get
from support.configs import simple_config
from support.gateway import Gateway, run_cli, running
from support.net import wait_until
from support.otlp_receiver import OtlpReceiver

TOKEN = "collector-token-5f1e9a"


def test_exporter_headers_reach_only_the_collector(upstreams, tmp_path):
    receiver = OtlpReceiver().start()
    try:
        otlp = {
            "endpoint": receiver.endpoint,
            "headers": {"authorization": f"Bearer {TOKEN}"},
            "flush_interval": "100ms",
        }
        cfg = simple_config(upstreams, tracing={"otlp": otlp})
        with running(Gateway(tmp_path / "gw", cfg)) as gw:
            resp = get(gw.url("/echo/s"))
            assert resp.status == 200
            assert TOKEN not in str(resp.upstream_headers()), "never sent upstream"
            assert wait_until(lambda: len(receiver.snapshot()) >= 1, timeout=20)
            assert receiver.headers[0]["authorization"] == f"Bearer {TOKEN}"
            assert TOKEN not in str(gw.status())
            assert TOKEN not in gw.admin_text("/metrics")
            gw.stop()
            assert TOKEN not in gw.log_text()
    finally:
        receiver.stop()


def test_a_bad_exporter_header_is_named_not_quoted(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            listen: 127.0.0.1:18080
            upstreams: [{{name: u, targets: ["127.0.0.1:9"]}}]
            routes: [{{name: r, paths: ["/a/*"], upstream: u}}]
            tracing:
              otlp:
                endpoint: http://127.0.0.1:4318
                headers: {{authorization: ["{TOKEN}"]}}
            """
        )
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode != 0
    out = res.stdout + res.stderr
    assert "tracing.otlp.headers" in out, out
    assert TOKEN not in out, out


def test_config_errors_name_the_field(tmp_path):
    cases = {
        "endpoint: https://collector:4318": "tracing.otlp.endpoint",
        "endpoint: http://127.0.0.1:4318\n    protocol: thrift": "tracing.otlp.protocol",
    }
    for body, field in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(
            "listen: 127.0.0.1:18080\n"
            'upstreams: [{name: u, targets: ["127.0.0.1:9"]}]\n'
            'routes: [{name: r, paths: ["/a/*"], upstream: u}]\n'
            f"tracing:\n  otlp:\n    {body}\n"
        )
        res = run_cli("check", "--config", str(path))
        assert res.returncode != 0
        assert field in res.stdout + res.stderr, res.stdout + res.stderr
    path.write_text(
        "listen: 127.0.0.1:18080\n"
        'upstreams: [{name: u, targets: ["127.0.0.1:9"]}]\n'
        'routes: [{name: r, paths: ["/a/*"], upstream: u}]\n'
        "tracing: {sample_ratio: 1.5}\n"
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode != 0 and "tracing.sample_ratio" in res.stdout + res.stderr
