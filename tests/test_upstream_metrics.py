"""Per-upstream-target families of GET /metrics, read with prometheus_client's parser after
known traffic to two upstreams of two targets each: answers by target and class (5xx
included), attempts without an answer by reason (a dead target, a dropped connection),
latency histograms whose counts match the answers, and the health gauges."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.client import get
from support.configs import route, upstream
from support.gateway import Gateway, running
from support.net import wait_until


def families(gw: Gateway) -> dict:
    text = gw.admin_text("/metrics")
    return {f.name: f for f in text_string_to_metric_families(text)}


def by_target(fams: dict, family: str, key: str) -> dict:
    """{(upstream, target, label `key`): value} of one family's `_total` samples."""
    return {
        (s.labels["upstream"], s.labels["target"], s.labels[key]): s.value
        for s in fams[family].samples
    }


def histogram(fams: dict, up: str, target: str) -> tuple[float, float, list[float]]:
    """(count, sum, cumulative bucket values) of one target's latency histogram."""
    fam = fams["pygate_upstream_latency_seconds"]
    mine = [s for s in fam.samples if (s.labels["upstream"], s.labels["target"]) == (up, target)]
    buckets = [s for s in mine if s.name.endswith("_bucket")]
    assert buckets[-1].labels["le"] == "+Inf"
    count = next(s.value for s in mine if s.name.endswith("_count"))
    total = next(s.value for s in mine if s.name.endswith("_sum"))
    return count, total, [s.value for s in buckets]


@pytest.fixture
def gw(upstreams, dead_addr, tmp_path) -> Iterator[Gateway]:
    a = upstreams.addr
    cfg = {
        "workers": 1,
        "upstreams": [
            # One pick per call, alternating: each target gets every other call.
            upstream("pair", [a("rr1"), a("rr2")], balance="round_robin", retries=0),
            # The dead target is ejected by its first failure (for an hour): exactly one
            # connect failure, its call retried on the live one.
            upstream(
                "spare",
                [a("lc1"), dead_addr],
                balance="round_robin",
                retries=1,
                max_fails=1,
                fail_cooldown="1h",
            ),
        ],
        "routes": [
            route("pair", ["/pair/*"], "pair"),
            route("spare", ["/spare/*"], "spare"),
        ],
    }
    with running(Gateway(tmp_path / "gw", cfg)) as gateway:
        yield gateway


def test_answers_failures_and_latency_per_target(gw: Gateway, upstreams, dead_addr) -> None:
    rr1, rr2, lc1 = upstreams.addr("rr1"), upstreams.addr("rr2"), upstreams.addr("lc1")
    served = Counter()
    for _ in range(4):
        r = get(gw.url("/pair/x"))
        assert r.status == 200
        served[r.json()["target"]] += 1
    assert served == {"rr1": 2, "rr2": 2}, served
    for _ in range(2):
        assert get(gw.url("/pair/x?mode=status&code=503")).status == 503
    for _ in range(2):
        assert get(gw.url("/pair/x?mode=close")).status == 502
    for _ in range(3):
        assert get(gw.url("/spare/x")).status == 200
    assert get(gw.url("/spare/x?mode=slow&delay=0.3")).status == 200
    assert get(gw.url("/nowhere")).status == 404  # not routed: no upstream tried

    def counted() -> dict | None:
        fams = families(gw)
        if "pygate_upstream_responses" not in fams:
            return None
        spare = by_target(fams, "pygate_upstream_responses", "class")
        return fams if spare.get(("spare", lc1, "2xx")) == 4 else None

    fams = wait_until(counted, 10, what="the upstream calls in /metrics")
    assert fams["pygate_upstream_responses"].type == "counter"
    assert fams["pygate_upstream_failures"].type == "counter"
    assert fams["pygate_upstream_latency_seconds"].type == "histogram"

    answers = by_target(fams, "pygate_upstream_responses", "class")
    failures = by_target(fams, "pygate_upstream_failures", "reason")
    assert {(u, t) for u, t, _ in answers} == {
        ("pair", rr1),
        ("pair", rr2),
        ("spare", lc1),
        ("spare", dead_addr),
    }
    # pair: 8 calls alternating over two targets (4 ok, 2 503, 2 dropped) -> 4 tries each.
    for target in (rr1, rr2):
        assert answers[("pair", target, "2xx")] == 2
        assert answers[("pair", target, "4xx")] == 0
        tried = sum(answers[("pair", target, c)] for c in ("1xx", "2xx", "3xx", "4xx", "5xx"))
        dropped = failures[("pair", target, "closed")]
        assert tried + dropped == 4, (target, tried, dropped)
    assert answers[("pair", rr1, "5xx")] + answers[("pair", rr2, "5xx")] == 2
    assert failures[("pair", rr1, "closed")] + failures[("pair", rr2, "closed")] == 2
    assert failures[("pair", rr1, "connect")] == 0

    # spare: every call answered by the live target; the dead one refused one connect.
    assert answers[("spare", lc1, "2xx")] == 4
    assert answers[("spare", dead_addr, "2xx")] == 0
    assert failures[("spare", dead_addr, "connect")] == 1
    assert failures[("spare", dead_addr, "timeout")] == 0
    assert failures[("spare", lc1, "connect")] == 0

    # Histograms: one observation per answer (none for an attempt without one).
    count, seconds, buckets = histogram(fams, "spare", lc1)
    assert count == 4 and seconds >= 0.3, (count, seconds)
    assert buckets == sorted(buckets)
    assert histogram(fams, "spare", dead_addr)[0] == 0
    for target in (rr1, rr2):
        answered = sum(answers[("pair", target, c)] for c in ("2xx", "5xx"))
        assert histogram(fams, "pair", target)[0] == answered

    # Health gauges per target: the dead one is ejected.
    healthy = {
        (s.labels["upstream"], s.labels["target"]): s.value
        for s in fams["pygate_upstream_target_healthy"].samples
    }
    assert healthy[("spare", dead_addr)] == 0
    assert healthy[("spare", lc1)] == 1
    assert {("pair", rr1), ("pair", rr2)} <= healthy.keys()


def test_target_series_survive_a_reload(gw: Gateway, upstreams) -> None:
    rr1 = upstreams.addr("rr1")
    for _ in range(2):
        assert get(gw.url("/pair/x")).status == 200
    cfg = gw.config
    cfg["upstreams"][0]["targets"] = [rr1]  # rr2 removed: keeps its last values
    gw.write_config(cfg)
    assert gw.reload() == "reloaded"
    for _ in range(3):
        assert get(gw.url("/pair/x")).status == 200

    def settled() -> dict | None:
        fams = families(gw)
        answers = by_target(fams, "pygate_upstream_responses", "class")
        return answers if answers.get(("pair", rr1, "2xx")) == 4 else None

    answers = wait_until(settled, 10, what="rr1's calls counted on after the reload")
    assert answers[("pair", upstreams.addr("rr2"), "2xx")] == 1
