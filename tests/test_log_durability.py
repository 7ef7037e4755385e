"""Nothing lost: spooling while the store is away, replay, restarts, SIGTERM.

Every test runs the real gateway (`python -m pygate serve`) and counts rows in a
real store against the requests the gateway answered. The "store away" cases use a
ClickHouse URL on a closed port, or a `pygate logs serve` process that is stopped
and started again under load.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from support.client import get
from support.configs import simple_config
from support.gateway import cli_env
from support.logs_server import LogsServer
from support.net import free_port, wait_until


def send(gateway, tag: str, count: int) -> list[str]:
    ids = [f"{tag}-{i}" for i in range(count)]
    for rid in ids:
        assert get(gateway.url(f"/echo/{rid}"), headers={"X-Request-Id": rid}).status == 200
    return ids


def spooled_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.batch"))


def test_spool_survives_a_restart_and_replays_in_order(make_gateway, upstreams, tmp_path):
    down = f"clickhouse://default@127.0.0.1:{free_port()}/pygate"
    log = {"store": down, "spool_dir": "./spool", "batch_size": 100}
    gateway = make_gateway(simple_config(upstreams, log=log), name="gw")
    spool_dir = gateway.workdir / "spool"
    tag = f"sp-{uuid.uuid4().hex[:8]}"
    ids = send(gateway, tag, 250)

    status = wait_until(
        lambda: (s := gateway.status())["log_spool_rows"] == 250 and s,
        60,
        what="250 records in the spool",
    )
    assert status["log_rows_written"] == 0 and status["log_rows_spooled"] == 250
    assert status["log_batches_failed"] >= 1 and "127.0.0.1" in status["log_last_error"]
    assert gateway.stop() == 0
    assert "stay in the spool" in gateway.log_text()
    assert len(spooled_files(spool_dir)) >= 3  # batches of at most 100

    # Same spool, a store that works: the next start replays before anything else.
    gateway.config["log"]["store"] = "chdb://./data"
    gateway.start()
    status = wait_until(
        lambda: (s := gateway.status())["log_rows_replayed"] == 250 and s,
        60,
        what="the spool replayed",
    )
    assert status["log_spool_rows"] == 0 and spooled_files(spool_dir) == []
    assert "replaying them first" in gateway.log_text()
    rows = gateway.logs_query(
        f"SELECT request_id, toUnixTimestamp64Milli(ts) AS ms FROM pygate.requests "
        f"WHERE startsWith(request_id, '{tag}-')"
    )
    assert sorted(r["request_id"] for r in rows) == sorted(ids)  # each once
    sent_order = sorted(rows, key=lambda r: int(r["request_id"].rsplit("-", 1)[1]))
    assert [r["ms"] for r in sent_order] == sorted(r["ms"] for r in rows)


def test_spool_files_keep_order_tokens_and_detect_damage(tmp_path):
    from pygate.logstore.batch import Batch
    from pygate.logstore.spool import Spool, SpoolError

    batches = [
        Batch.new(1, bytes([i]) * (10 + i), (10 + i).to_bytes(4, "little")) for i in range(3)
    ]
    spool = Spool(str(tmp_path), 1024 * 1024)
    for batch in batches:
        assert spool.push(batch)
    with pytest.raises(SpoolError, match="in use"):
        Spool(str(tmp_path), 1024 * 1024)
    spool.close()

    reopened = Spool(str(tmp_path), 1024 * 1024)  # as after a restart
    assert (reopened.rows, reopened.batches) == (3, 3)
    first = reopened.oldest()
    assert first == batches[0]  # same bytes, same deduplication token
    reopened.pop_oldest()
    damaged = spooled_files(tmp_path)[0]
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"X")
    assert reopened.oldest() == batches[2]  # the damaged one is set aside, not replayed
    assert damaged.with_name(damaged.name + ".corrupt").exists()
    assert not reopened.push(Batch.new(1, b"x" * 2_000_000, (2_000_000).to_bytes(4, "little")))
    reopened.close()


def test_sigterm_flushes_records_not_yet_shipped(make_gateway, upstreams):
    # A flush interval far beyond the test: only the shutdown flush can ship these.
    log = {"store": "chdb://./data", "flush_interval": "1h", "batch_size": 100_000}
    gateway = make_gateway(simple_config(upstreams, log=log), name="gw")
    tag = f"term-{uuid.uuid4().hex[:8]}"
    send(gateway, tag, 120)
    assert gateway.status()["log_rows_written"] == 0
    assert gateway.stop() == 0
    # The gateway is gone: `logs query` opens the store itself.
    rows = gateway.logs_query(
        f"SELECT count() AS n FROM pygate.requests WHERE startsWith(request_id, '{tag}-')"
    )
    assert rows == [{"n": 120}]


def test_a_spool_directory_serves_one_gateway(make_gateway, upstreams, tmp_path):
    shared = str(tmp_path / "shared-spool")
    first = make_gateway(
        simple_config(upstreams, log={"store": "chdb://./data", "spool_dir": shared}), name="one"
    )
    with pytest.raises(RuntimeError, match="in use by another gateway"):
        make_gateway(
            simple_config(upstreams, log={"store": "chdb://./data", "spool_dir": shared}),
            name="two",
        )
    assert first.proc.poll() is None


def test_metrics_endpoint_shows_pipeline_counters(make_gateway, upstreams):
    down = f"clickhouse://default@127.0.0.1:{free_port()}/pygate"
    gateway = make_gateway(simple_config(upstreams, log={"store": down}), name="gw")
    send(gateway, f"m-{uuid.uuid4().hex[:8]}", 5)
    wait_until(lambda: gateway.status()["log_spool_rows"] == 5, 60, what="5 spooled")
    text = gateway.admin_text("/metrics")
    for line in (
        "# TYPE pygate_log_rows_spooled_total counter",
        "pygate_log_rows_spooled_total 5",
        "pygate_log_spool_rows 5",
        "pygate_log_rows_written_total 0",
        "pygate_log_rows_dropped_total 0",
        "pygate_requests_total 5",
        'pygate_responses_total{class="2xx"} 5',
    ):
        assert line in text.splitlines(), line
    # The default spool lives by the config when the store is a server.
    assert spooled_files(gateway.workdir / "pygate-spool")


def test_store_restarted_under_load_loses_and_duplicates_nothing(make_gateway, upstreams, tmp_path):
    server = LogsServer(tmp_path / "store", allow_writes=True).start()
    try:
        # A bounded load (open loop at 3,000 req/s): the test is about every record arriving
        # once, and an unbounded one makes the replay's length depend on the machine's speed.
        log = {"store": server.sink_url, "batch_size": 2000, "flush_interval": "100ms"}
        gateway = make_gateway(simple_config(upstreams, log=log), name="gw")
        load = subprocess.Popen(
            [sys.executable, "-m", "pygate", "bench", gateway.url("/echo/load")]
            + ["-c", "8", "-d", "14s", "--rate", "3000", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=cli_env(),
        )
        time.sleep(4)
        assert server.stop() == 0  # the store goes away mid-load...
        wait_until(lambda: gateway.status()["log_spool_rows"] > 0, 30, what="spooling")
        time.sleep(2)
        server.start()  # ...and comes back on the same port while the load goes on
        out, _ = load.communicate(timeout=120)
        report = json.loads(out)
        assert report["requests"] > 1000, report

        def drained() -> dict:
            s = gateway.status()
            idle = s["records_pending"] == 0 and s["log_rows_pending_retry"] == 0
            return s if idle and s["log_rows_written"] >= s["requests_total"] else {}

        status = wait_until(drained, 180, what="every record in the store")
        stored = server.client().command("SELECT count() FROM pygate.requests")
        assert stored == status["requests_total"] == status["log_rows_written"]
        assert status["log_rows_spooled"] > 0 and status["log_rows_replayed"] > 0
        assert status["log_rows_dropped"] == 0 and status["log_rows_quarantined"] == 0
        rollup = server.client().command("SELECT sum(requests) FROM pygate.requests_1m_route")
        assert rollup == stored
    finally:
        server.stop()
        server.kill()
