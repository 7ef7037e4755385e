"""Every request lands in the log store (chDB) with the right fields.

Queried the way an operator would: `pygate logs query --config ... --format json`,
which goes through the running gateway's admin listener.
"""

from __future__ import annotations

import time
import uuid

import pytest
from support.client import fetch, get

COLUMNS = [
    "ts",
    "request_id",
    "route",
    "consumer",
    "method",
    "protocol",
    "host",
    "path",
    "status",
    "latency_ms",
    "upstream_latency_ms",
    "bytes_in",
    "bytes_out",
    "client_ip",
    "upstream_addr",
    "error_kind",
    "grpc_status",
    "rate_limited",
    "tls_version",
    "tls_sni",
    "tls_alpn",
    "ws_close_code",
    "ws_frames_in",
    "ws_frames_out",
]


def as_bool(value) -> bool:
    assert value in (True, False, 0, 1, "true", "false"), value
    return value in (True, 1, "true")


@pytest.fixture(scope="module")
def logged(gw, upstreams, dead_addr):
    """Send a known mix of requests (ids chosen by the client) and fetch their records."""
    tag = uuid.uuid4().hex[:8]
    rid = {name: f"log-{tag}-{name}" for name in ["ok", "post", "r1", "r2", "limited"]}
    rid |= {name: f"log-{tag}-{name}" for name in ["unauth", "noroute", "dead", "badmethod"]}
    started = time.time()
    responses = {
        "ok": get(gw.url("/echo/ok?x=1"), headers={"X-Request-Id": rid["ok"]}),
        "post": fetch(
            "POST", gw.url("/echo/post"), data=b"p" * 1000, headers={"X-Request-Id": rid["post"]}
        ),
        "r1": get(
            gw.url("/limited/1"), headers={"X-Request-Id": rid["r1"], "apikey": "carol-key-1"}
        ),
        "r2": get(
            gw.url("/limited/2"), headers={"X-Request-Id": rid["r2"], "apikey": "carol-key-1"}
        ),
        "limited": get(
            gw.url("/limited/3"), headers={"X-Request-Id": rid["limited"], "apikey": "carol-key-1"}
        ),
        "unauth": get(gw.url("/auth/x"), headers={"X-Request-Id": rid["unauth"]}),
        "noroute": get(gw.url("/nowhere"), headers={"X-Request-Id": rid["noroute"]}),
        "dead": get(gw.url("/dead/x"), headers={"X-Request-Id": rid["dead"]}),
        "badmethod": fetch(
            "PUT", gw.url("/api/items/1"), headers={"X-Request-Id": rid["badmethod"]}
        ),
        "generated": get(gw.url("/echo/generated")),
    }
    rid["generated"] = responses["generated"].header("x-request-id")
    records = gw.records(list(rid.values()))
    return {
        "rid": rid,
        "resp": responses,
        "rec": {name: records[r] for name, r in rid.items()},
        "started": started,
        "upstreams": upstreams,
        "dead_addr": dead_addr,
    }


def test_statuses_match_what_the_client_got(logged):
    for name, resp in logged["resp"].items():
        assert logged["rec"][name]["status"] == resp.status, name
        assert resp.header("x-request-id") == logged["rid"][name]


def test_columns_in_order(logged):
    assert list(logged["rec"]["ok"]) == COLUMNS


def test_successful_proxied_request(logged, gw):
    rec = logged["rec"]["ok"]
    assert rec["route"] == "echo"
    assert rec["consumer"] == ""
    assert rec["method"] == "GET"
    assert rec["path"] == "/echo/ok"
    assert rec["host"] == f"127.0.0.1:{gw.port}"
    assert rec["client_ip"] == "127.0.0.1"
    assert rec["upstream_addr"] == logged["upstreams"].addr("echo")
    assert rec["error_kind"] == ""
    assert as_bool(rec["rate_limited"]) is False
    assert int(rec["bytes_out"]) >= len(logged["resp"]["ok"].body)
    assert float(rec["latency_ms"]) >= float(rec["upstream_latency_ms"]) >= 0
    # ts: unix time parsed right (not off by a factor of 1000), within the test's window.
    ts = rec["ts"]
    if isinstance(ts, str):
        from datetime import datetime

        ts = datetime.fromisoformat(ts).timestamp()
    assert logged["started"] - 3600 * 24 < ts < time.time() + 3600 * 24


def test_request_body_bytes_counted(logged):
    rec = logged["rec"]["post"]
    assert rec["method"] == "POST"
    assert int(rec["bytes_in"]) >= 1000


def test_authenticated_and_rate_limited_requests(logged):
    r1, r2, limited = (logged["rec"][k] for k in ("r1", "r2", "limited"))
    for rec in (r1, r2, limited):
        assert rec["route"] == "limited"
        assert rec["consumer"] == "carol"
    assert (r1["status"], r2["status"], limited["status"]) == (200, 200, 429)
    assert as_bool(r1["rate_limited"]) is False
    assert as_bool(limited["rate_limited"]) is True
    assert limited["error_kind"] == "rate_limited"
    assert limited["upstream_addr"] == ""


def test_gateway_generated_errors(logged, dead_addr):
    rec = logged["rec"]
    assert (rec["unauth"]["status"], rec["unauth"]["error_kind"]) == (401, "unauthorized")
    assert rec["unauth"]["route"] == "auth" and rec["unauth"]["consumer"] == ""
    assert (rec["noroute"]["status"], rec["noroute"]["error_kind"]) == (404, "no_route")
    assert rec["noroute"]["route"] == ""
    assert (rec["dead"]["status"], rec["dead"]["error_kind"]) == (502, "upstream_unavailable")
    assert rec["dead"]["route"] == "dead"
    assert (rec["badmethod"]["status"], rec["badmethod"]["error_kind"]) == (
        405,
        "method_not_allowed",
    )


def test_generated_request_id_matches_response_header(logged):
    rec = logged["rec"]["generated"]
    assert rec["request_id"] == logged["resp"]["generated"].header("x-request-id")
    assert rec["path"] == "/echo/generated"


def test_query_formats(gw, logged):
    rid = logged["rid"]["ok"]
    sql = f"SELECT request_id, status FROM pygate.requests WHERE request_id = '{rid}'"
    csv_out = gw.logs_query(sql, fmt="csv").strip().splitlines()
    assert csv_out[0].replace('"', "") == "request_id,status"
    assert csv_out[1].replace('"', "") == f"{rid},200"
    table = gw.logs_query(sql, fmt="table").strip().splitlines()
    assert table[0].split() == ["request_id", "status"]
    assert any(line.split() == [rid, "200"] for line in table[1:]), table


def test_admin_logs_query_endpoint(gw, logged):
    import json
    import urllib.error
    import urllib.request

    def post(body: dict) -> tuple[int, object]:
        req = urllib.request.Request(
            gw.admin_url("/logs/query"),
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", **gw.admin_headers()},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read())

    rid = logged["rid"]["ok"]
    sql = f"SELECT request_id, status FROM pygate.requests WHERE request_id = '{rid}'"
    status, doc = post({"sql": sql, "format": "json"})
    assert status == 200, doc
    assert doc["columns"] == ["request_id", "status"]
    assert [[r[0], int(r[1])] for r in doc["rows"]] == [[rid, 200]]
    status, doc = post({"sql": "SELEKT nonsense", "format": "json"})
    assert status == 400
    assert isinstance(doc["error"], str) and doc["error"]


def test_bad_sql_is_an_error_not_a_crash(gw):
    from support.gateway import run_cli

    res = run_cli("logs", "query", "--config", str(gw.config_path), "SELEKT nonsense")
    assert res.returncode != 0
    assert res.stderr.strip()
    assert get(gw.url("/echo/after-bad-sql")).status == 200


def test_readme_example_queries_run(gw, logged):
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    blocks = [part.split("```", 1)[0] for part in readme.split("```sql\n")[1:]]
    queries = [q.strip() for block in blocks for q in block.split(";") if q.strip()]
    assert len(queries) >= 3
    for query in queries:
        sql = query.replace("'...'", f"'{logged['rid']['ok']}'")
        rows = gw.logs_query(sql)
        assert isinstance(rows, list), query
