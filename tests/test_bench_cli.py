"""`pygate bench`: the bundled load generator, driven through the real CLI against the
real gateway and its upstream."""

from __future__ import annotations

import json
import uuid

from support.gateway import Gateway, run_cli
from support.net import free_port


def bench(*args: str):
    return run_cli("bench", *args, "--warmup", "0s", "--no-progress")


def test_request_budget_through_the_gateway(gw: Gateway) -> None:
    before = gw.status()["requests_total"]
    done = bench(gw.url("/echo/bench"), "-n", "300", "-c", "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "closed"
    assert report["requests"] == 300
    assert report["statuses"] == {"200": 300}
    assert report["errors"] == {}
    lat = report["latency_ms"]
    assert 0 < lat["p50"] <= lat["p99"] <= lat["p99.99"] <= lat["max"]
    # The gateway saw at least every request the generator counted.
    assert gw.status()["requests_total"] - before >= 300


def test_headers_method_and_body_are_sent(gw: Gateway) -> None:
    done = bench(
        gw.url("/auth/bench"),
        "-n",
        "20",
        "-c",
        "2",
        "-X",
        "POST",
        "-H",
        "apikey: bob-key-1",
        "--body",
        '{"x": 1}',
        "--json",
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    # Without the header key-auth would answer 401.
    assert report["statuses"] == {"200": 20}


def test_open_loop_holds_the_requested_rate(gw: Gateway) -> None:
    done = bench(gw.url("/echo/rate"), "--rate", "100", "-d", "2s", "-c", "4", "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["mode"] == "open"
    assert 170 <= report["requests"] <= 230, report["requests"]


def test_table_report_and_errors_against_a_dead_port(dead_addr: str) -> None:
    done = bench(f"http://{dead_addr}/", "-d", "300ms", "-c", "2")
    assert done.returncode == 1
    assert "connect" in done.stdout


def test_bad_options_are_usage_errors() -> None:
    done = bench("ftp://127.0.0.1/", "-n", "1")
    assert done.returncode == 2
    assert "only http://" in done.stderr
    done = bench("http://127.0.0.1:1/", "-n", "1", "-H", "no-colon")
    assert done.returncode == 2
    assert "--header" in done.stderr
    done = bench("http://127.0.0.1:1/", "--duration", "soon")
    assert done.returncode == 2
    assert "--duration" in done.stderr


def test_save_goes_through_the_running_gateway(gw: Gateway) -> None:
    url = gw.url(f"/echo/saved-{uuid.uuid4().hex[:8]}")
    done = bench(url, "-n", "40", "-c", "2", "--save", str(gw.config_path))
    assert done.returncode == 0, done.stderr
    assert "through the gateway" in done.stderr
    rows = gw.logs_query(
        f"SELECT requests, mode, non_2xx, p99_ms > 0 AS timed FROM pygate.bench_runs "
        f"WHERE url = '{url}'"
    )
    assert rows == [{"requests": 40, "mode": "closed", "non_2xx": 0, "timed": 1}]


def test_save_opens_the_store_when_no_gateway_runs(gw: Gateway, tmp_path) -> None:
    config = tmp_path / "offline.yaml"
    config.write_text(
        "listen: 127.0.0.1:1\n"
        f"admin: {{listen: '127.0.0.1:{free_port()}'}}\n"
        "log: {store: 'chdb://./store'}\n"
    )
    url = gw.url("/echo/offline")
    done = bench(url, "-n", "10", "-c", "1", "--save", str(config))
    assert done.returncode == 0, done.stderr
    assert "saved to pygate.bench_runs in chdb://" in done.stderr
    query = run_cli(
        "logs", "query", "--config", str(config), "--format", "csv",
        "SELECT url, requests FROM pygate.bench_runs",
    )  # fmt: skip
    assert query.returncode == 0, query.stderr
    assert f"{url},10" in query.stdout


def test_save_with_a_bad_config_is_a_config_error(tmp_path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("listen: nowhere\n")
    done = bench("http://127.0.0.1:1/", "-n", "1", "--timeout", "1s", "--save", str(config))
    assert done.returncode == 2, done.stderr  # a config error, not a failed run
    assert "bad.yaml" in done.stderr
