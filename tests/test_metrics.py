"""GET /metrics on a real gateway, read with prometheus_client's own text parser: every
family typed (counters end in _total), per-route response counters and latency histograms
that agree with the traffic sent, bounded route labels, series that survive a reload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.client import get
from support.configs import route, simple_config
from support.gateway import Gateway, running
from support.net import wait_until


def families(gw: Gateway) -> dict:
    text = gw.admin_text("/metrics")
    parsed = {f.name: f for f in text_string_to_metric_families(text)}
    for f in parsed.values():
        assert f.type != "unknown", f"untyped family {f.name}"
        if f.type == "counter":
            assert all(s.name == f"{f.name}_total" for s in f.samples), f
    return parsed


def route_samples(fams: dict, family: str, route_name: str) -> dict:
    """{(sample name, le or class): value} of one route in one family."""
    out = {}
    for s in fams[family].samples:
        if s.labels.get("route") == route_name:
            out[(s.name, s.labels.get("le") or s.labels.get("class"))] = s.value
    return out


def check_histogram(fams: dict, family: str, route_name: str) -> tuple[float, float]:
    """The route's (count, sum), after checking the buckets are cumulative up to +Inf."""
    samples = [s for s in fams[family].samples if s.labels.get("route") == route_name]
    buckets = [s for s in samples if s.name.endswith("_bucket")]
    bounds = [float(s.labels["le"]) for s in buckets]
    assert bounds == sorted(bounds) and bounds[-1] == float("inf"), bounds
    values = [s.value for s in buckets]
    assert values == sorted(values), values
    count = next(s.value for s in samples if s.name.endswith("_count"))
    total = next(s.value for s in samples if s.name.endswith("_sum"))
    assert values[-1] == count
    return count, total


@pytest.fixture
def gw(upstreams, tmp_path) -> Iterator[Gateway]:
    cfg = simple_config(upstreams, consumers=[{"name": "alice", "keys": ["alice-key"]}])
    cfg["routes"] += [
        route("alpha", ["/alpha/*"], "echo"),
        route("beta", ["/beta/*"], "echo", plugins={"key-auth": {}}),
    ]
    with running(Gateway(tmp_path / "gw", cfg)) as gateway:
        yield gateway


def test_every_family_is_typed_and_routes_are_counted(gw: Gateway) -> None:
    for _ in range(3):
        assert get(gw.url("/alpha/x")).status == 200
    assert get(gw.url("/alpha/x?mode=status&code=503")).status == 503
    assert get(gw.url("/alpha/x?mode=slow&delay=0.3")).status == 200
    for _ in range(2):
        assert get(gw.url("/beta/x")).status == 401
    assert get(gw.url("/nowhere")).status == 404  # not routed: in the totals only

    def counted() -> dict | None:
        fams = families(gw)
        alpha = route_samples(fams, "pygate_route_responses", "alpha")
        return fams if alpha.get(("pygate_route_responses_total", "2xx")) == 4 else None

    fams = wait_until(counted, 10, what="alpha's calls in /metrics")
    alpha = route_samples(fams, "pygate_route_responses", "alpha")
    assert alpha[("pygate_route_responses_total", "5xx")] == 1
    assert alpha[("pygate_route_responses_total", "4xx")] == 0
    beta = route_samples(fams, "pygate_route_responses", "beta")
    assert beta[("pygate_route_responses_total", "4xx")] == 2
    assert "_other" not in {s.labels.get("route") for s in fams["pygate_route_responses"].samples}

    count, seconds = check_histogram(fams, "pygate_route_latency_seconds", "alpha")
    assert count == 5 and seconds >= 0.3, (count, seconds)
    up_count, up_seconds = check_histogram(fams, "pygate_route_upstream_latency_seconds", "alpha")
    assert up_count == 5 and 0.3 <= up_seconds <= seconds, (up_count, up_seconds, seconds)
    slow = route_samples(fams, "pygate_route_latency_seconds", "alpha")
    assert slow[("pygate_route_latency_seconds_bucket", "0.25")] == 4, "one call took > 0.3 s"
    # A refused call never reached the upstream: no upstream latency for beta.
    assert check_histogram(fams, "pygate_route_latency_seconds", "beta")[0] == 2
    beta_up = [
        s
        for s in fams["pygate_route_upstream_latency_seconds"].samples
        if s.labels.get("route") == "beta" and s.name.endswith("_count")
    ]
    assert not beta_up or beta_up[0].value == 0

    assert fams["pygate_requests"].type == "counter"
    assert fams["pygate_auth_failures"].type == "counter"
    assert fams["pygate_connections_active"].type == "gauge"


def test_route_series_survive_a_reload_and_a_rename_starts_a_new_one(gw: Gateway) -> None:
    for _ in range(2):
        get(gw.url("/alpha/x"))
        get(gw.url("/beta/x"), headers={"apikey": "alice-key"})
    cfg = gw.config
    for r in cfg["routes"]:
        if r["name"] == "alpha":
            r["name"] = "alpha-renamed"
    gw.write_config(cfg)
    assert gw.reload() == "reloaded"
    get(gw.url("/alpha/x"))
    get(gw.url("/beta/x"), headers={"apikey": "alice-key"})

    def settled() -> dict | None:
        fams = families(gw)
        renamed = route_samples(fams, "pygate_route_responses", "alpha-renamed")
        return fams if renamed.get(("pygate_route_responses_total", "2xx")) == 1 else None

    fams = wait_until(settled, 10, what="the renamed route in /metrics")
    old = route_samples(fams, "pygate_route_responses", "alpha")
    assert old[("pygate_route_responses_total", "2xx")] == 2, "kept at its last value"
    beta = route_samples(fams, "pygate_route_responses", "beta")
    assert beta[("pygate_route_responses_total", "2xx")] == 3, "an unchanged route counts on"


def test_route_labels_are_bounded(upstreams, tmp_path) -> None:
    cfg = simple_config(upstreams)
    cfg["routes"] += [route(f"r{i}", [f"/r{i}/*"], "echo") for i in range(260)]
    with running(Gateway(tmp_path / "many", cfg)) as gw:
        for i in range(260):
            assert get(gw.url(f"/r{i}/x")).status == 200
        get(gw.url("/echo/x"))

        def all_counted() -> dict | None:
            fams = families(gw)
            total = sum(
                s.value
                for s in fams["pygate_route_responses"].samples
                if s.labels["class"] == "2xx"
            )
            return fams if total == 261 else None

        fams = wait_until(all_counted, 15, what="every call in /metrics")
    labels = {s.labels["route"] for s in fams["pygate_route_responses"].samples}
    assert len(labels) == 257, len(labels)  # 256 own labels, then "_other"
    other = route_samples(fams, "pygate_route_responses", "_other")
    assert other[("pygate_route_responses_total", "2xx")] == 261 - 256


def test_ai_call_log_counters_are_typed(ai_gw: Gateway) -> None:
    fams = families(ai_gw)
    ai = {name: f for name, f in fams.items() if name.startswith("pygate_ai_")}
    assert "pygate_ai_log_rows_written" in ai, sorted(fams)
    assert ai["pygate_ai_log_rows_written"].type == "counter"
    assert ai["pygate_ai_log_spool_bytes"].type == "gauge"
