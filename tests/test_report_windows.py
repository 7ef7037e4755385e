"""Rollup reports over windows that do not start or end on a whole minute.

The per-minute rollups count whole minutes. A report must either count exactly the
window it prints (latency and consumers: rollups for the whole minutes inside, raw rows
for the partial minutes at the edges) or print the whole-minute window it counted
(traffic, drawn per minute). Rows are written straight into a store at known times;
expected values come from those rows, and from SQL over pygate.requests for the window.
"""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from support.gateway import run_cli
from support.seeded_store import seeded_store

# Seconds after a whole minute T0 at which a request was logged, and its latency.
# The window asked for is [T0+20s, T0+3m40s): two partial minutes at the edges
# (T0+0:20..1:00 and T0+3:00..3:40) and two whole minutes between them.
OFFSETS = (5.0, 19.999, 20.0, 25.0, 50.5, 70.0, 95.0, 130.0, 179.9, 180.0, 200.0, 219.5, 220.0)
WINDOW = (20.0, 220.0)


def _row(t0: datetime, index: int, offset: float) -> dict:
    return {
        "ts": round((t0 + timedelta(seconds=offset)).timestamp(), 3),
        "request_id": f"edge-{index:02d}",
        "route": ("items", "orders")[index % 2],
        "consumer": ("alice", "bob", "")[index % 3],
        "method": "GET",
        "host": "h",
        "path": "/p",
        "status": (200, 200, 503)[index % 3],
        "latency_ms": float(10 * index + 1),
        "upstream_latency_ms": 1.0,
        "bytes_in": 100 + index,
        "bytes_out": 1000 + index,
        "client_ip": "10.0.0.1",
        "upstream_addr": "127.0.0.1:9001",
        "error_kind": "",
        "rate_limited": False,
    }


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("edge-store")
    # Recent, so the retention TTL keeps the rows; on a whole minute.
    t0 = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(hours=2)
    rows = [_row(t0, i, offset) for i, offset in enumerate(OFFSETS)]
    config = seeded_store(root, rows)
    start, end = (t0 + timedelta(seconds=s) for s in WINDOW)
    inside = [r for r in rows if start.timestamp() <= r["ts"] < end.timestamp()]
    return {"config": config, "t0": t0, "start": start, "end": end, "inside": inside}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _report(store: dict, name: str, fmt: str = "json") -> list | str:
    window = ["--from", _iso(store["start"]), "--to", _iso(store["end"])]
    res = run_cli(
        "logs", "report", name, "--config", str(store["config"]), *window, "--format", fmt
    )
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout) if fmt == "json" else res.stdout


def _sql_count(store: dict) -> int:
    """What SQL over the raw table says for the printed window."""
    sql = (
        "SELECT count() AS n FROM pygate.requests WHERE "
        f"ts >= toDateTime64('{store['start']:%Y-%m-%d %H:%M:%S}', 3, 'UTC') AND "
        f"ts < toDateTime64('{store['end']:%Y-%m-%d %H:%M:%S}', 3, 'UTC')"
    )
    res = run_cli("logs", "query", "--config", str(store["config"]), sql, "--format", "json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)[0]["n"]


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def test_the_window_has_partial_minutes_at_both_edges(edge_store):
    # The premise: whole minutes would count rows the window excludes.
    assert _sql_count(edge_store) == len(edge_store["inside"]) == 10
    assert edge_store["start"].second == 20 and edge_store["end"].second == 40


def test_latency_counts_exactly_the_window(edge_store):
    inside = edge_store["inside"]
    expected = []
    for name in ("items", "orders"):
        values = [r["latency_ms"] for r in inside if r["route"] == name]
        expected.append(
            {
                "route": name,
                "requests": len(values),
                **{f"p{round(q * 100)}_ms": _nearest_rank(values, q) for q in (0.5, 0.95, 0.99)},
            }
        )
    expected.sort(key=lambda e: (-e["p99_ms"], e["route"]))
    got = _report(edge_store, "latency")
    assert got == expected
    assert sum(r["requests"] for r in got) == _sql_count(edge_store)


def test_consumers_count_exactly_the_window(edge_store):
    inside = edge_store["inside"]
    got = {r["consumer"]: r for r in _report(edge_store, "consumers")}
    assert set(got) == {r["consumer"] for r in inside}
    for name, row in got.items():
        mine = [r for r in inside if r["consumer"] == name]
        assert row["requests"] == len(mine), (name, row)
        assert row["status_5xx"] == sum(r["status"] >= 500 for r in mine), (name, row)
        assert row["bytes_in"] == sum(r["bytes_in"] for r in mine), (name, row)
        assert row["bytes_out"] == sum(r["bytes_out"] for r in mine), (name, row)
        assert row["p95_ms"] == _nearest_rank([r["latency_ms"] for r in mine], 0.95)


def test_traffic_prints_the_whole_minutes_it_counted(edge_store):
    t0 = edge_store["t0"]
    covered_start, covered_end = t0, t0 + timedelta(minutes=4)
    # Counted: every row of the minutes T0 .. T0+3 (the edges' whole minutes).
    counted = [
        r for r in _all_rows(edge_store) if t0.timestamp() <= r["ts"] < covered_end.timestamp()
    ]
    got = _report(edge_store, "traffic")
    assert [b["time"] for b in got] == [
        (t0 + timedelta(minutes=m)).strftime("%Y-%m-%d %H:%M:%S") for m in range(4)
    ]
    assert sum(b["requests"] for b in got) == len(counted)
    table = _report(edge_store, "traffic", fmt="table")
    title = table.splitlines()[0]
    assert f"{_iso(covered_start)} .. {_iso(covered_end)}" in title, title
    assert _iso(edge_store["start"]) not in title, title


def _all_rows(store: dict) -> list[dict]:
    return [_row(store["t0"], i, offset) for i, offset in enumerate(OFFSETS)]
