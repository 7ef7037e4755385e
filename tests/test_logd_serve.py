"""`pygate logs serve` while the gateway serves: statements go to the logd that owns the
store, so clickhouse-connect reads (and writers insert) while requests are logged.

Real processes: `pygate serve` with its logd, `pygate logs serve` on the same config,
the real clickhouse-connect client, an aiohttp load on the gateway meanwhile.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import uuid

import clickhouse_connect
import pytest
import yaml
from clickhouse_connect.driver.exceptions import DatabaseError
from support.client import get
from support.configs import simple_config
from support.gateway import run_cli
from support.logs_server import LogsServer
from support.net import free_port, wait_until
from test_logd import Load, process_maps

ANALYST = ("analyst", "analyst-pw-1")
SINK = ("sink", "sink-pw-1")
USERS = [
    {"name": ANALYST[0], "password": ANALYST[1], "allow_writes": False},
    {"name": SINK[0], "password": SINK[1], "allow_writes": True},
]
LOG = {
    "store": "chdb://./data",
    "batch_size": 200,
    "daemon": {"enabled": True},
    "serve": {"users": USERS},
}


@pytest.fixture
def served(make_gateway, upstreams, tmp_path):
    gateway = make_gateway(simple_config(upstreams, log=dict(LOG)))
    server = LogsServer(tmp_path / "serve", config_path=gateway.config_path)
    try:
        server.start()
    except Exception:
        print(server.log_text()[-3000:])
        server.kill()
        raise
    yield gateway, server
    server.stop()


def client(server: LogsServer, user: tuple[str, str]):
    return clickhouse_connect.get_client(
        host="127.0.0.1", port=server.port, username=user[0], password=user[1]
    )


def rows_for(ch, tag: str) -> int:
    return ch.command(f"SELECT count() FROM pygate.requests WHERE path = '/echo/{tag}'")


def test_clickhouse_connect_reads_the_store_while_the_gateway_serves(served):
    gateway, server = served
    assert "through logd" in server.log_text()
    # logd runs the statements: the logs serve process never loads chDB.
    assert "chdb" not in process_maps(server.proc.pid).lower()
    analyst = client(server, ANALYST)
    tag = f"s-{uuid.uuid4().hex[:8]}"
    before = gateway.status()["requests_total"]
    with Load(gateway, tag) as load:
        # Queried while the load runs: the count only grows, and is never past the load.
        seen = []
        wait_until(lambda: seen.append(rows_for(analyst, tag)) or seen[-1] > 200, 60, what="rows")
        assert seen == sorted(seen) and seen[-1] <= load.ok + 4
    assert load.failed == 0
    requests = gateway.status()["requests_total"] - before
    assert requests == load.ok
    wait_until(lambda: rows_for(analyst, tag) == requests, 60, what="rows == requests")
    # A whole result through clickhouse-connect's Native format, with types.
    result = analyst.query(
        "SELECT status, count() AS n FROM pygate.requests WHERE path = {p:String} GROUP BY status",
        parameters={"p": f"/echo/{tag}"},
    )
    assert result.result_rows == [(200, requests)]
    # The same answer as `pygate logs query` (through the gateway's admin listener).
    queried = gateway.logs_query(
        f"SELECT count() AS n FROM pygate.requests WHERE path = '/echo/{tag}'"
    )
    assert int(queried[0]["n"]) == requests


def test_sessions_and_the_sandbox_hold_through_logd(served):
    _gateway, server = served
    analyst = client(server, ANALYST)
    # USE and SET are kept by the HTTP session and applied in logd per statement.
    analyst.command("USE pygate")
    assert analyst.command("SELECT currentDatabase()") == "pygate"
    analyst.command("SET max_threads = 1")
    assert str(analyst.command("SELECT getSetting('max_threads')")) == "1"
    with pytest.raises(DatabaseError, match="READONLY|readonly"):
        analyst.command("INSERT INTO pygate.requests (request_id) VALUES ('analyst')")
    with pytest.raises(DatabaseError, match="ACCESS_DENIED"):
        analyst.query("SELECT * FROM file('/etc/passwd', 'LineAsString')")
    with pytest.raises(DatabaseError, match="UNKNOWN_TABLE|doesn't exist|does not exist"):
        analyst.query("SELECT * FROM pygate.no_such_table")


def test_a_writer_inserts_while_the_gateway_serves(served):
    gateway, server = served
    sink = client(server, SINK)
    request_id = f"w-{uuid.uuid4().hex}"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    sink.insert(
        "pygate.requests",
        [[now, request_id, "/written", 201]],
        column_names=["ts", "request_id", "path", "status"],
    )
    assert get(gateway.url("/echo/after-insert")).status == 200
    row = gateway.records([request_id])[request_id]
    assert row["path"] == "/written" and row["status"] == 201
    # Never DDL, not even for a writer.
    with pytest.raises(DatabaseError):
        sink.command("DROP TABLE pygate.requests")
    assert client(server, ANALYST).command("EXISTS TABLE pygate.requests") == 1


def test_logs_serve_rides_out_a_logd_restart(served):
    gateway, server = served
    analyst = client(server, ANALYST)
    assert analyst.command("SELECT 1") == 1
    first = gateway.status()["logd_pid"]
    os.kill(first, signal.SIGKILL)
    wait_until(
        lambda: (s := gateway.status())["logd_running"] and s["logd_pid"] != first,
        60,
        what="logd restarted by the gateway",
    )

    def answers() -> bool:
        try:
            return analyst.command("SELECT 2") == 2
        except DatabaseError:
            return False

    wait_until(answers, 60, what="logs serve answering through the new logd")


def test_logs_serve_aimed_at_another_stores_logd_exits_2(served, upstreams, tmp_path):
    gateway, _server = served
    other = tmp_path / "other"
    other.mkdir()
    sock = str(gateway.workdir / "data-logd.sock")
    config = simple_config(upstreams, log={**LOG, "daemon": {"enabled": True, "socket": sock}})
    config["listen"] = f"127.0.0.1:{free_port()}"
    config["admin"] = {"listen": f"127.0.0.1:{free_port()}"}
    (other / "b.yaml").write_text(yaml.safe_dump(config))
    result = run_cli(
        "logs", "serve", "--config", str(other / "b.yaml"), "--listen", "127.0.0.1:0", timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert str(gateway.config_path) in result.stderr and str(other / "b.yaml") in result.stderr
    assert "logs serve on" not in result.stderr
