"""Log SQL is read access to pygate's tables and nothing else: the admin /logs/query.

An analyst (anyone holding the admin token, or a script given it) sends SQL to the
real gateway's /logs/query and to `pygate logs query` (through the gateway, and
straight into the store when no gateway runs). Every variant tries to read a real
file outside the store, create or overwrite a file, or reach a loopback listener;
the statement check must refuse each before it runs: the file's content never
appears, the target file never exists, the listener never sees a connection.
Legitimate analyst SQL keeps working.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest
from support.configs import simple_config
from support.gateway import Gateway, run_cli, running
from support.sql_attacks import NETWORK, READS, WRITES
from support.sql_attacks import bait as make_bait


@pytest.fixture(scope="module")
def bait(tmp_path_factory):
    with make_bait(tmp_path_factory.mktemp("outside")) as found:
        yield found


@pytest.fixture(scope="module")
def sandbox_gw(upstreams, tmp_path_factory):
    cfg = simple_config(upstreams)
    with running(Gateway(tmp_path_factory.mktemp("gw-sql-sandbox"), cfg)) as gateway:
        seed(gateway)  # so that the legitimate queries have something to read
        yield gateway


def seed(gateway: Gateway) -> None:
    request_id = f"seed-{uuid.uuid4().hex[:8]}"
    req = urllib.request.Request(gateway.url("/echo/seed"), headers={"X-Request-Id": request_id})
    urllib.request.urlopen(req, timeout=10).read()
    gateway.records([request_id])


def logs_query(gw: Gateway, sql: str) -> tuple[int, str]:
    req = urllib.request.Request(
        gw.admin_url("/logs/query"),
        data=json.dumps({"sql": sql, "format": "json"}).encode(),
        headers={"Content-Type": "application/json", **gw.admin_headers()},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def fill(template: str, bait: dict, target: Path) -> str:
    return template.format(
        secret=bait["secret"], target=target, port=bait["listener"].port, dir=bait["outside"]
    )


def assert_refused(status: int, body: str, bait: dict, sql: str) -> None:
    assert status in (400, 403), (sql, status, body)
    assert bait["token"] not in body, sql
    assert "error" in json.loads(body), body


@pytest.mark.parametrize("template", READS + WRITES + NETWORK)
def test_admin_logs_query_refuses(sandbox_gw: Gateway, bait, template: str):
    target = bait["outside"] / f"written-{uuid.uuid4().hex[:8]}.txt"
    sql = fill(template, bait, target)
    status, body = logs_query(sandbox_gw, sql)
    assert_refused(status, body, bait, sql)
    assert not target.exists(), sql
    assert bait["listener"].connections == 0, sql


@pytest.mark.parametrize(
    "template",
    [
        "SELECT * FROM file('{secret}', 'LineAsString')",
        "INSERT INTO FUNCTION url('http://127.0.0.1:{port}/x', 'CSV', 'a Int8') SELECT 1",
        "INSERT INTO FUNCTION file('{target}', 'LineAsString') SELECT 'pwned'",
    ],
)
def test_refusals_say_why_with_403(sandbox_gw: Gateway, bait, template: str):
    target = bait["outside"] / "why.txt"
    status, body = logs_query(sandbox_gw, fill(template, bait, target))
    assert status == 403, body
    assert json.loads(body)["message"]  # the reason, for the analyst


def test_a_format_clause_is_refused_with_a_reason(sandbox_gw: Gateway):
    status, body = logs_query(sandbox_gw, "SELECT 1 FORMAT CSV")
    assert status == 403 and "--format" in json.loads(body)["message"], body


def test_cli_logs_query_through_the_gateway_refuses(sandbox_gw: Gateway, bait):
    target = bait["outside"] / "cli-gw.txt"
    for template in (READS[0], READS[2], WRITES[0], NETWORK[0]):
        sql = fill(template, bait, target)
        res = sandbox_gw.cli("logs", "query", sql, "--format", "json")
        assert res.returncode != 0, sql
        assert bait["token"] not in res.stdout + res.stderr
    assert not target.exists()
    assert bait["listener"].connections == 0


def test_cli_logs_query_on_the_store_itself_refuses(upstreams, bait, tmp_path):
    """No gateway running: `logs query` opens the store read-only itself."""
    gateway = Gateway(tmp_path / "gw-stopped", simple_config(upstreams))
    with running(gateway):
        seed(gateway)
    target = bait["outside"] / "cli-store.txt"
    config = str(gateway.config_path)
    for template in (READS[0], READS[2], READS[6], WRITES[0], WRITES[5], NETWORK[0], NETWORK[2]):
        sql = fill(template, bait, target)
        res = run_cli("logs", "query", "--config", config, sql, "--format", "json")
        assert res.returncode != 0, (sql, res.stdout)
        assert bait["token"] not in res.stdout + res.stderr, sql
        assert "query failed" in res.stderr
    assert not target.exists()
    assert bait["listener"].connections == 0
    ok = run_cli("logs", "query", "--config", config, "SELECT count() AS n FROM pygate.requests")
    assert ok.returncode == 0, ok.stderr


LEGIT = [
    ("SELECT count() AS n FROM pygate.requests", lambda rows: rows[0][0] >= 1),
    (
        "SELECT route, count() AS n, avg(latency_ms) AS lat, quantile(0.9)(latency_ms) AS p90, "
        "countIf(status >= 500) AS errors FROM pygate.requests GROUP BY route ORDER BY n DESC",
        lambda rows: len(rows) >= 1,
    ),
    (
        "WITH recent AS (SELECT * FROM pygate.requests WHERE ts > now() - INTERVAL 1 DAY) "
        "SELECT count() FROM recent",
        lambda rows: rows[0][0] >= 1,
    ),
    (
        "SELECT r.route, m.requests FROM pygate.requests AS r "
        "LEFT JOIN (SELECT route, sum(requests) AS requests FROM pygate.requests_1m_route "
        "GROUP BY route) AS m ON r.route = m.route LIMIT 5",
        lambda rows: len(rows) >= 1,
    ),
    (
        "SELECT status FROM pygate.requests WHERE request_id IN "
        "(SELECT request_id FROM pygate.requests ORDER BY ts DESC LIMIT 10)",
        lambda rows: len(rows) >= 1,
    ),
    (
        "SELECT name, rows FROM system.parts WHERE database = 'pygate' AND active",
        lambda rows: len(rows) >= 1,
    ),
    ("SELECT number FROM numbers(3)", lambda rows: [r[0] for r in rows] == [0, 1, 2]),
    ("SHOW TABLES FROM pygate", lambda rows: ["requests"] in rows),
    ("EXPLAIN SELECT count() FROM pygate.requests", lambda rows: len(rows) >= 1),
    ("DESCRIBE TABLE pygate.requests", lambda rows: rows[0][0] == "ts"),
    (
        "SELECT toStartOfMinute(ts) AS m, count() FROM pygate.requests GROUP BY m ORDER BY m "
        "WITH FILL STEP 60",
        lambda rows: len(rows) >= 1,
    ),
    (
        "SELECT request_id, row_number() OVER (PARTITION BY route ORDER BY ts) AS n "
        "FROM pygate.requests /* a comment */ LIMIT 3",
        lambda rows: len(rows) >= 1,
    ),
]


@pytest.mark.parametrize("sql,check", LEGIT, ids=[sql[:40] for sql, _ in LEGIT])
def test_analyst_queries_still_work(sandbox_gw: Gateway, sql: str, check):
    status, body = logs_query(sandbox_gw, sql)
    assert status == 200, (sql, body)
    rows = json.loads(body)["rows"]
    assert check(rows), (sql, rows)
