"""`pygate logs report` against known data, checked number by number.

Two sources of known data:
- rows written straight into a chDB store (exact timestamps, latencies, statuses),
  then the CLI run on that store with no gateway up (it opens the store itself);
- requests sent through a real gateway to real upstreams, then the CLI run while the
  gateway is up (it goes through the admin listener), and the same report over HTTP.

Expected values are computed here from the rows or requests the test made, never
copied from a report's output.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import uuid
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support.client import get
from support.configs import route, upstream
from support.gateway import run_cli
from support.seeded_store import seeded_store

QUANTILES = (0.5, 0.95, 0.99)


# ----- known rows written straight into a store ------------------------------------


def _window_start() -> datetime:
    # Recent (retention TTL must not drop the rows) and on a whole minute.
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    return now - timedelta(hours=3)


def known_rows(t0: datetime) -> list[dict]:
    """120 requests over 40 minutes from t0, plus rows just outside the hour window."""
    rows = []
    for i in range(120):
        route_name = ["items", "orders", "items", ""][i % 4]
        consumer = "" if route_name == "" else ["alice", "bob", "alice", ""][(i // 4) % 4]
        status, kind, limited = 200, "", False
        if route_name == "":
            status, kind = 404, "no_route"
        elif i % 10 == 3:
            status, kind, limited = 429, "rate_limited", True
        elif i % 10 == 7:
            status, kind = 502, "upstream_unavailable"
        elif i % 10 == 9:
            status = 500
        elif i % 10 == 5:
            status = 301
        latency = float((i * 37) % 97 + 1)
        rows.append(
            _row(
                t0 + timedelta(seconds=i * 20 + 0.25),
                f"known-{i:03d}",
                route_name,
                consumer,
                status,
                kind,
                limited,
                latency,
                i,
            )
        )
    # Outside [t0, t0 + 1h) and in other minutes: must not be counted anywhere.
    for j, offset in enumerate((-120.0, -61.0, 3600.0, 3725.5)):
        rows.append(
            _row(
                t0 + timedelta(seconds=offset),
                f"outside-{j}",
                "items",
                "alice",
                502,
                "upstream_unavailable",
                False,
                5000.0 + j,
                200 + j,
            )
        )
    return rows


def _row(ts, rid, route_name, consumer, status, kind, limited, latency, i) -> dict:
    proxied = kind == "" or kind == "upstream_unavailable"
    return {
        "ts": round(ts.timestamp(), 3),
        "request_id": rid,
        "route": route_name,
        "consumer": consumer,
        "method": "GET" if i % 3 else "POST",
        "host": "api.example.com",
        "path": f"/api/{route_name or 'nowhere'}/{i}",
        "status": status,
        "latency_ms": latency,
        "upstream_latency_ms": latency - 0.5 if proxied and kind == "" else 0.0,
        "bytes_in": 100 + i,
        "bytes_out": 1000 + 10 * i,
        "client_ip": f"10.0.0.{i % 5}",
        "upstream_addr": "127.0.0.1:9001" if kind == "" else "",
        "error_kind": kind,
        "rate_limited": limited,
        # Columns later issues added, given so a row read back is the row written.
        "protocol": "HTTP/2" if i % 4 == 0 else "HTTP/1.1",
        "grpc_status": "",
        "tls_version": "TLSv1.3" if i % 4 == 0 else "",
        "tls_sni": "api.example.com" if i % 4 == 0 else "",
        "tls_alpn": "h2" if i % 4 == 0 else "",
        "ws_close_code": 0,
        "ws_frames_in": 0,
        "ws_frames_out": 0,
    }


@pytest.fixture(scope="module")
def known_store(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A migrated store holding known_rows(), and a config whose admin nobody answers."""
    root = tmp_path_factory.mktemp("known-store")
    t0 = _window_start()
    rows = known_rows(t0)
    config = seeded_store(root, rows)
    in_window = [r for r in rows if r["request_id"].startswith("known-")]
    return {"config": config, "t0": t0, "rows": in_window, "all_rows": rows}


def report(store: dict, *args: str, fmt: str = "json") -> list | dict | str:
    t0 = store["t0"]
    window = ["--from", _iso(t0), "--to", _iso(t0 + timedelta(hours=1))]
    res = run_cli(
        "logs", "report", "--config", str(store["config"]), *args, *window, "--format", fmt
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if fmt == "json" else res.stdout


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ts(row: dict) -> str:
    """How reports print a ts: UTC with milliseconds."""
    moment = datetime.fromtimestamp(row["ts"], UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def pct(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 0


def status_class(status: int) -> str:
    return f"status_{status // 100}xx"


def expected_traffic(rows: list[dict], t0: datetime) -> list[dict]:
    buckets = []
    for minute in range(60):
        start = (t0 + timedelta(minutes=minute)).timestamp()
        inside = [r for r in rows if start <= r["ts"] < start + 60]
        classes = Counter(status_class(r["status"]) for r in inside)
        n = len(inside)
        buckets.append(
            {
                "time": (t0 + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S"),
                "requests": n,
                **{f"status_{c}xx": classes[f"status_{c}xx"] for c in "2345"},
                "rate_limited": sum(r["rate_limited"] for r in inside),
                "client_error_pct": pct(classes["status_4xx"], n),
                "server_error_pct": pct(classes["status_5xx"], n),
            }
        )
    return buckets


def test_traffic_per_minute_matches_known_rows(known_store):
    got = report(known_store, "traffic")
    # A one-hour window is drawn per minute, empty minutes included.
    assert got == expected_traffic(known_store["rows"], known_store["t0"])
    assert sum(b["requests"] for b in got) == 120


def test_traffic_filtered_by_route_and_by_consumer(known_store):
    rows, t0 = known_store["rows"], known_store["t0"]
    by_route = report(known_store, "traffic", "--route", "orders")
    assert by_route == expected_traffic([r for r in rows if r["route"] == "orders"], t0)
    by_consumer = report(known_store, "traffic", "--consumer", "bob")
    assert by_consumer == expected_traffic([r for r in rows if r["consumer"] == "bob"], t0)
    # "" is a real value: requests that matched no route.
    unrouted = report(known_store, "traffic", "--route", "")
    assert sum(b["status_4xx"] for b in unrouted) == sum(r["route"] == "" for r in rows) == 30


def test_latency_quantiles_per_route(known_store):
    by_route = defaultdict(list)
    for r in known_store["rows"]:
        by_route[r["route"]].append(r["latency_ms"])
    expected = [
        {
            "route": name,
            "requests": len(values),
            **{f"p{round(q * 100)}_ms": nearest_rank(values, q) for q in QUANTILES},
        }
        for name, values in by_route.items()
    ]
    expected.sort(key=lambda e: (-e["p99_ms"], e["route"]))
    assert report(known_store, "latency") == expected


def test_top_consumers(known_store):
    groups = defaultdict(list)
    for r in known_store["rows"]:
        groups[r["consumer"]].append(r)
    expected = [
        {
            "consumer": name,
            "requests": len(rs),
            "status_4xx": sum(400 <= r["status"] < 500 for r in rs),
            "status_5xx": sum(r["status"] >= 500 for r in rs),
            "rate_limited": sum(r["rate_limited"] for r in rs),
            "bytes_in": sum(r["bytes_in"] for r in rs),
            "bytes_out": sum(r["bytes_out"] for r in rs),
            "p95_ms": nearest_rank([r["latency_ms"] for r in rs], 0.95),
        }
        for name, rs in groups.items()
    ]
    expected.sort(key=lambda e: (-e["requests"], e["consumer"]))
    assert report(known_store, "consumers") == expected
    assert report(known_store, "consumers", "--limit", "1") == expected[:1]


def test_error_breakdown_by_status(known_store):
    errors = [r for r in known_store["rows"] if r["status"] >= 400]
    groups = defaultdict(list)
    for r in errors:
        groups[(r["status"], r["error_kind"])].append(r)
    expected = [
        {
            "status": status,
            "class": f"{status // 100}xx",
            "error_kind": kind,
            "requests": len(rs),
            "pct_of_errors": pct(len(rs), len(errors)),
            "routes": len({r["route"] for r in rs}),
            "consumers": len({r["consumer"] for r in rs}),
            "first_seen": min(_ts(r) for r in rs),
            "last_seen": max(_ts(r) for r in rs),
        }
        for (status, kind), rs in groups.items()
    ]
    expected.sort(key=lambda e: (-e["requests"], e["status"], e["error_kind"]))
    assert report(known_store, "errors") == expected
    assert {e["status"] for e in expected} == {404, 429, 500, 502}


def test_rate_limit_rejections(known_store):
    groups = defaultdict(list)
    for r in known_store["rows"]:
        groups[(r["route"], r["consumer"])].append(r)
    expected = []
    for (route_name, consumer), rs in groups.items():
        rejected = [r for r in rs if r["rate_limited"]]
        if rejected:
            expected.append(
                {
                    "route": route_name,
                    "consumer": consumer,
                    "rejected": len(rejected),
                    "requests": len(rs),
                    "rejected_pct": pct(len(rejected), len(rs)),
                    "rejected_clients": len({r["client_ip"] for r in rejected}),
                    "first_rejected": min(_ts(r) for r in rejected),
                    "last_rejected": max(_ts(r) for r in rejected),
                }
            )
    expected.sort(key=lambda e: (-e["rejected"], e["route"], e["consumer"]))
    assert report(known_store, "rate-limits") == expected
    assert sum(e["rejected"] for e in expected) == 6  # i % 10 == 3, minus unrouted rows


def test_slowest_requests(known_store):
    ordered = sorted(known_store["rows"], key=lambda r: (-r["latency_ms"], r["ts"]))
    got = report(known_store, "slowest", "--limit", "5")
    assert [g["request_id"] for g in got] == [r["request_id"] for r in ordered[:5]]
    assert [g["latency_ms"] for g in got] == [r["latency_ms"] for r in ordered[:5]]
    assert got[0]["time"] == _ts(ordered[0])
    only_items = report(known_store, "slowest", "--route", "items", "--limit", "3")
    items = [r for r in ordered if r["route"] == "items"][:3]
    assert [g["request_id"] for g in only_items] == [r["request_id"] for r in items]


def test_one_request_by_id(known_store):
    wanted = known_store["rows"][42]
    res = run_cli(
        "logs",
        "report",
        "request",
        "--config",
        str(known_store["config"]),
        "--request-id",
        wanted["request_id"],
        "--format",
        "json",
    )
    assert res.returncode == 0, res.stderr
    [record] = json.loads(res.stdout)
    assert record == {**wanted, "ts": _ts(wanted)}
    # The table form prints one field per line.
    table = run_cli(
        "logs",
        "report",
        "--config",
        str(known_store["config"]),
        "--request-id",
        wanted["request_id"],
    ).stdout
    assert any(line.split() == ["path", wanted["path"]] for line in table.splitlines()), table


def test_missing_request_id_exits_1(known_store):
    res = run_cli(
        "logs",
        "report",
        "request",
        "--config",
        str(known_store["config"]),
        "--request-id",
        "no-such-request",
    )
    assert res.returncode == 1
    assert "no record of request 'no-such-request'" in res.stderr


def test_csv_and_table_formats(known_store):
    expected = report(known_store, "errors")
    csv_lines = report(known_store, "errors", fmt="csv").splitlines()
    assert csv_lines[0].replace('"', "").split(",")[:4] == [
        "status",
        "class",
        "error_kind",
        "requests",
    ]
    assert [int(line.split(",")[0]) for line in csv_lines[1:]] == [e["status"] for e in expected]
    table = report(known_store, "errors", fmt="table")
    assert table.startswith("# 4xx/5xx breakdown by status, ")
    assert f"({len(expected)} rows)" in table


def test_all_reports_at_once(known_store):
    got = report(known_store)
    assert list(got) == ["traffic", "latency", "consumers", "errors", "rate-limits", "slowest"]
    assert sum(b["requests"] for b in got["traffic"]) == 120


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "5 parsecs"], '--since: expected a duration such as "90s"'),
        (["--from", "yesterday"], '--from: expected a time such as "2026-01-31T12:00:00Z"'),
        (["--from", "2026-01-02", "--to", "2026-01-01"], "--from must be before --to"),
        (["--to", "2026-01-01"], "--to needs --from"),
        (["--since", "1h", "--from", "2026-01-01"], "either --since or --from/--to"),
        (["traffic", "--route", "a", "--consumer", "b"], "give --route or --consumer, not both"),
        (["latency", "--consumer", "b"], "the latency report does not take --consumer"),
        (["request"], "the request report needs --request-id ID"),
        (["slowest", "--limit", "0"], "--limit: expected 1..10000, got 0"),
    ],
)
def test_bad_options_are_explained(known_store, args, message):
    res = run_cli("logs", "report", "--config", str(known_store["config"]), *args)
    assert res.returncode == 2, res.stdout
    assert message in res.stderr, res.stderr


_NATIVE = """
import json, sys
from chdb import session
from pygate.reports import REPORTS
from pygate.reports.params import native_value
path, params = sys.argv[1], json.loads(sys.argv[2])
reader = session.Session(path + "?mode=ro")
out = {}
for name, values in params.items():
    result = reader.query(REPORTS[name].sql, "JSONCompact", params=values)
    out[name] = json.loads(result.bytes())["data"]
print(json.dumps(out))
"""


def test_report_sql_runs_with_native_clickhouse_parameters(known_store):
    """The SQL text is plain ClickHouse with {name:Type} parameters: bound natively by
    chDB it returns what the CLI's own binding returns."""
    from pygate.reports import REPORTS, ReportOptions, prepare
    from pygate.reports.params import native_value

    t0 = known_store["t0"]
    options = ReportOptions(start=_iso(t0), end=_iso(t0 + timedelta(hours=1)), route="items")
    natives, expected = {}, {}
    for name, rep in REPORTS.items():
        opts = options
        if "route" not in rep.filters:
            opts = ReportOptions(start=options.start, end=options.end)
        if rep.needs_request_id:
            opts = ReportOptions(start=options.start, end=options.end, request_id="known-042")
        prepared = prepare(name, opts)
        natives[name] = {
            k: "\\N" if native_value(v) is None else native_value(v)
            for k, v in prepared.values.items()
            if k in rep.parameters
        }
        res = run_cli(
            "logs",
            "report",
            name,
            "--config",
            str(known_store["config"]),
            *_cli_args(opts),
            "--format",
            "json",
        )
        assert res.returncode == 0, res.stderr
        expected[name] = [list(row.values()) for row in json.loads(res.stdout)]
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            _NATIVE,
            str(Path(known_store["config"]).parent / "data"),
            json.dumps(natives),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == expected
    assert expected["request"][0][1] == "known-042"


def _cli_args(options) -> list[str]:
    args = ["--from", options.start, "--to", options.end]
    for flag, value in (("--route", options.route), ("--request-id", options.request_id)):
        if value is not None:
            args += [flag, value]
    return args


# ----- known requests through a real gateway ----------------------------------------


@pytest.fixture(scope="module")
def live(upstreams, dead_addr, tmp_path_factory):
    """A gateway with a token; a known mix of requests; their records in its store."""
    from support.gateway import Gateway

    config = {
        "workers": 1,
        "admin": {"token": "report-token"},
        "upstreams": [
            upstream("echo", [upstreams.addr("echo")]),
            upstream("dead", [dead_addr], retries=0),
        ],
        "consumers": [
            {"name": "alice", "keys": ["alice-key"]},
            {"name": "bob", "keys": ["bob-key"]},
        ],
        "routes": [
            route("echo", ["/echo/*"], "echo"),
            route("dead", ["/dead/*"], "dead"),
            route(
                "limited",
                ["/limited/*"],
                "echo",
                plugins={
                    "key-auth": {},
                    "rate-limit": {"rate": 3, "per": "60s", "burst": 3, "by": "consumer"},
                },
            ),
        ],
    }
    gateway = Gateway(tmp_path_factory.mktemp("gw-reports"), config)
    gateway.start()
    tag = uuid.uuid4().hex[:6]
    sent: list[tuple[str, str, dict]] = []  # (request id, path, headers)
    plan = (
        [("/echo/ok", {})] * 7
        + [("/echo/x?mode=status&code=503", {})]
        + [("/limited/a", {"apikey": "alice-key"})] * 5
        + [("/limited/b", {"apikey": "bob-key"})] * 4
        + [("/limited/anon", {})]
        + [("/dead/x", {})] * 2
        + [("/nowhere", {})] * 3
    )
    statuses = Counter()
    try:
        for n, (path, headers) in enumerate(plan):
            rid = f"rep-{tag}-{n:02d}"
            resp = get(gateway.url(path), headers={**headers, "X-Request-Id": rid})
            statuses[resp.status] += 1
            sent.append((rid, path, headers))
        records = gateway.records([rid for rid, _, _ in sent])
        yield {"gw": gateway, "records": records, "statuses": statuses}
    finally:
        try:
            gateway.stop()
        finally:
            gateway.kill()


def live_report(live, *args: str) -> list | dict:
    res = live["gw"].cli("logs", "report", *args, "--since", "30m", "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def test_live_statuses_are_what_the_test_expects(live):
    # The plan above, as the gateway answered it: the numbers the reports must show.
    assert live["statuses"] == {200: 13, 503: 1, 429: 3, 401: 1, 502: 2, 404: 3}


def test_live_traffic_totals(live):
    buckets = live_report(live, "traffic")
    total = {
        k: sum(b[k] for b in buckets)
        for k in ("requests", "status_2xx", "status_4xx", "status_5xx", "rate_limited")
    }
    assert total == {
        "requests": 23,
        "status_2xx": 13,
        "status_4xx": 7,
        "status_5xx": 3,
        "rate_limited": 3,
    }
    # --since 30m: one bucket per minute, the first one starting at or before the window.
    starts = [datetime.fromisoformat(b["time"]) for b in buckets]
    assert len(starts) in (30, 31)
    assert all(b - a == timedelta(minutes=1) for a, b in zip(starts, starts[1:], strict=False))


def test_live_consumers_errors_and_rejections(live):
    consumers = {c["consumer"]: c for c in live_report(live, "consumers")}
    assert {k: (c["requests"], c["rate_limited"]) for k, c in consumers.items()} == {
        "": (14, 0),
        "alice": (5, 2),
        "bob": (4, 1),
    }
    errors = {(e["status"], e["error_kind"]): e["requests"] for e in live_report(live, "errors")}
    assert errors == {
        (429, "rate_limited"): 3,
        (404, "no_route"): 3,
        (502, "upstream_unavailable"): 2,
        (401, "unauthorized"): 1,
        (503, ""): 1,
    }
    limits = [
        (r["route"], r["consumer"], r["rejected"], r["requests"])
        for r in live_report(live, "rate-limits")
    ]
    assert limits == [("limited", "alice", 2, 5), ("limited", "bob", 1, 4)]


def test_live_latency_and_slowest_match_the_raw_records(live):
    by_route = defaultdict(list)
    for rec in live["records"].values():
        by_route[rec["route"]].append(float(rec["latency_ms"]))
    for row in live_report(live, "latency"):
        values = by_route[row["route"]]
        assert row["requests"] == len(values)
        for q in QUANTILES:
            assert row[f"p{round(q * 100)}_ms"] == pytest.approx(nearest_rank(values, q), abs=0.01)
    slowest = live_report(live, "slowest", "--limit", "1")[0]
    top = max(live["records"].values(), key=lambda r: float(r["latency_ms"]))
    assert slowest["request_id"] == top["request_id"]


def test_live_request_lookup_and_http_endpoint(live):
    gw = live["gw"]
    rid, rec = next((k, v) for k, v in live["records"].items() if v["status"] == 503)
    res = gw.cli("logs", "report", "request", "--request-id", rid, "--format", "json")
    assert res.returncode == 0, res.stderr
    [got] = json.loads(res.stdout)
    assert (got["request_id"], got["route"], got["status"], got["path"]) == (
        rid,
        "echo",
        503,
        "/echo/x",
    )
    # The dashboard's endpoint answers the same numbers, and only with the token.
    status, body = gw.admin_get("/logs/report/consumers?since=30m")
    assert status == 200, body
    assert [dict(zip(body["columns"], r, strict=True)) for r in body["rows"]] == live_report(
        live, "consumers"
    )
    status, body = gw.admin_get("/logs/report/consumers?since=30m", token=None)
    assert status == 401
    status, body = gw.admin_get("/logs/report/traffic?since=1h&route=a&consumer=b")
    assert (status, body["error"]) == (
        400,
        "the traffic report reads per-route or per-consumer "
        "rollups: give --route or --consumer, not both",
    )
    status, body = gw.admin_get("/logs/report/nonsense")
    assert status == 404 and "reports: traffic, latency" in body["error"]
