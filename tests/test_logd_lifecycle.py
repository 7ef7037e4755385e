"""logd as the default: stops, restarts and answers while the gateway serves, nothing lost.

Real processes: `pygate serve` (which starts and supervises logd), an aiohttp load on a
thread, the CLI; rows are counted in the real chDB store and compared with what the
gateway's /status counted (and, for a stopped gateway, its last words: the
`stopped (N requests served, ...)` line carries the same counter).
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid

from support.client import get
from support.configs import simple_config
from support.net import free_port, wait_until
from test_logd import Load, _alive, count_rows, logd_config, process_maps

STOPPED = re.compile(r"pygate: stopped \((\d+) requests served")


def served_at_stop(gateway, lifetime: int) -> int:
    """requests_total of the gateway's `lifetime`-th run (1-based), from its stop line."""
    counts = STOPPED.findall(gateway.log_text())
    assert len(counts) >= lifetime, gateway.log_text()[-2000:]
    return int(counts[lifetime - 1])


def fixed_ports(config: dict) -> dict:
    # A restarted gateway must come back where the load client keeps sending.
    config["listen"] = f"127.0.0.1:{free_port()}"
    config["admin"] = {"listen": f"127.0.0.1:{free_port()}"}
    return config


def spooled_batches(gateway) -> list[str]:
    spool = gateway.workdir / "data-spool"
    return sorted(n for n in os.listdir(spool) if n.endswith(".batch")) if spool.exists() else []


def test_logd_is_the_default_and_the_embedded_store_stays_available(make_gateway, upstreams):
    # No log.daemon section at all: logd owns the store, the gateway never maps chDB.
    default = make_gateway(simple_config(upstreams), name="default")
    status = default.status()
    assert status["logd_running"] is True
    assert "chdb" not in process_maps(default.proc.pid).lower()
    assert "chdb" in process_maps(status["logd_pid"]).lower()
    assert default.stop() == 0
    # log.daemon.enabled: false keeps the store in the gateway's process.
    log = {"daemon": {"enabled": False}}
    embedded = make_gateway(simple_config(upstreams, log=log), name="embedded")
    assert "logd_pid" not in embedded.status()
    assert "chdb" in process_maps(embedded.proc.pid).lower()
    request_id = f"e-{uuid.uuid4().hex[:8]}"
    assert get(embedded.url("/echo/e"), headers={"X-Request-Id": request_id}).status == 200
    assert embedded.records([request_id])[request_id]["path"] == "/echo/e"


def test_sigterm_under_load_stops_logd_cleanly_and_loses_nothing(make_gateway, upstreams):
    gateway = make_gateway(logd_config(upstreams))
    tag = f"t-{uuid.uuid4().hex[:8]}"
    logd_pid = gateway.status()["logd_pid"]
    with Load(gateway, tag) as load:
        wait_until(lambda: load.ok > 500, 60, what="load running")
        assert gateway.stop() == 0  # while the clients keep sending
        wait_until(lambda: load.failed > 0, 30, what="clients refused after the stop")
    assert not _alive(logd_pid)
    log = gateway.log_text()
    assert "logd: stopped" in log and "killing it" not in log
    assert served_at_stop(gateway, 1) == load.ok
    # Neither process runs now: the CLI opens the store itself. Every answered request
    # is a row, and no batch waits in the spool.
    assert count_rows(gateway, tag) == load.ok
    assert spooled_batches(gateway) == []


def test_both_processes_restarted_under_load_rows_equal_requests(make_gateway, upstreams):
    gateway = make_gateway(fixed_ports(logd_config(upstreams)))
    tag = f"r-{uuid.uuid4().hex[:8]}"
    with Load(gateway, tag) as load:
        wait_until(lambda: load.ok > 300, 60, what="load running")
        # logd alone: SIGTERM; the gateway spools meanwhile and its supervisor restarts it.
        first = gateway.status()["logd_pid"]
        os.kill(first, signal.SIGTERM)
        wait_until(
            lambda: (s := gateway.status())["logd_running"] and s["logd_pid"] != first,
            60,
            what="logd restarted by the gateway",
        )
        mark = load.ok
        wait_until(lambda: load.ok > mark + 300, 60, what="load through the new logd")
        # Then the gateway (and the logd it runs): SIGTERM, and start again on its ports.
        assert gateway.stop() == 0
        gateway.start()
        mark = load.ok
        wait_until(lambda: load.ok > mark + 300, 60, what="load on the restarted gateway")
    status = wait_until(
        lambda: (s := gateway.status())["log_spool_rows"] == 0 and s,
        60,
        what="nothing left in the spool",
    )
    # Every request either lifetime counted was answered, and is one row (no replay doubled).
    assert served_at_stop(gateway, 1) + status["requests_total"] == load.ok
    wait_until(lambda: count_rows(gateway, tag) == load.ok, 60, what="rows == requests")
    assert gateway.stop() == 0
    assert count_rows(gateway, tag) == load.ok


def report(gateway, name: str) -> list[dict]:
    res = gateway.cli("logs", "report", name, "--since", "15m", "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_logs_query_and_report_answer_right_while_the_gateway_serves(make_gateway, upstreams):
    gateway = make_gateway(logd_config(upstreams))
    tag = f"q-{uuid.uuid4().hex[:8]}"
    sent = {f"/echo/{tag}/a": 7, f"/echo/{tag}/b": 4, f"/nowhere/{tag}": 3}
    for path, n in sent.items():
        for _ in range(n):
            get(gateway.url(path))
    paths = ", ".join(f"'{path}'" for path in sent)
    sql = (
        "SELECT path, status, count() AS n FROM pygate.requests "
        f"WHERE path IN ({paths}) GROUP BY path, status ORDER BY path"
    )
    expected = [(f"/echo/{tag}/a", 200, 7), (f"/echo/{tag}/b", 200, 4), (f"/nowhere/{tag}", 404, 3)]

    def queried() -> list[tuple]:
        return [(r["path"], int(r["status"]), int(r["n"])) for r in gateway.logs_query(sql)]

    with Load(gateway, f"{tag}-load") as load:  # other traffic goes on meanwhile
        wait_until(lambda: queried() == expected, 60, what="logs query gives the counts sent")
        # Our 404s are the only errors: the load is all 200s.
        errors = report(gateway, "errors")
        assert [(int(r["status"]), int(r["requests"])) for r in errors] == [(404, 3)]
        assert load.ok > 0
    assert load.failed == 0
    # With the load stopped, the traffic report (from the rollups) adds up to /status's
    # count of requests, 3 of them 4xx.
    total = gateway.status()["requests_total"]

    def traffic() -> tuple[int, int]:
        buckets = report(gateway, "traffic")
        return sum(int(b["requests"]) for b in buckets), sum(int(b["status_4xx"]) for b in buckets)

    wait_until(lambda: traffic() == (total, 3), 60, what="traffic report == /status")
    assert total == load.ok + 14


def test_log_daemon_cpus_pins_logd(make_gateway, upstreams):
    cpus = sorted(os.sched_getaffinity(0))[-1:]
    gateway = make_gateway(simple_config(upstreams, log={"daemon": {"cpus": cpus}}))
    logd_pid = gateway.status()["logd_pid"]
    assert os.sched_getaffinity(logd_pid) == set(cpus)
    # The gateway itself is not pinned by it.
    assert os.sched_getaffinity(gateway.proc.pid) == os.sched_getaffinity(0)


def test_a_cpu_logd_cannot_have_is_a_clear_start_error(make_gateway, upstreams, tmp_path):
    from support.gateway import Gateway

    gateway = Gateway(tmp_path / "bad", simple_config(upstreams, log={"daemon": {"cpus": [4095]}}))
    try:
        gateway.start()
        raise AssertionError("a gateway whose logd cannot be pinned must not serve")
    except RuntimeError:
        pass
    finally:
        gateway.kill()
    log = gateway.log_text()
    assert "logd: cannot pin to CPUs [4095]" in log
    assert "log store: logd exited with code 1 at start" in log
