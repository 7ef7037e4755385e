"""The per-upstream-target families of /metrics cannot be grown or forged from outside:
their labels come from the config only (a client's Host, path, method or forwarding
headers never make a series). Upstream names are refused by the config unless plain
(letters, digits, '.', '_', '-'); the renderer escapes label values anyway, so even a name
with quotes, backslashes or a newline could not inject lines or families."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from support.client import fetch
from support.configs import route, upstream
from support.gateway import Gateway, running
from support.net import wait_until

from pygate.server.upstream_metrics import metric_lines

TRICKY = 'evil"} 1\n# TYPE pygate_forged counter\npygate_forged_total 9\\'
NAME = "api.v1-internal_x"


def test_client_input_never_makes_a_series_and_names_are_escaped(upstreams, tmp_path) -> None:
    cfg = {
        "workers": 1,
        "upstreams": [upstream(NAME, [upstreams.addr("echo")])],
        "routes": [route("r", ["/r/*"], NAME)],
    }
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        for i in range(40):
            headers = {
                "Host": f"h{i}.example",
                "X-Forwarded-Host": f"fwd{i}:{1000 + i}",
                "X-Upstream": f"other{i}",
            }
            method = ("GET", "POST", "DELETE", "PATCH")[i % 4]
            r = fetch(method, gw.url(f"/r/{i}/x?target=127.0.0.1:{i}"), headers=headers)
            assert r.status == 200

        def counted() -> list | None:
            fams = list(text_string_to_metric_families(gw.admin_text("/metrics")))
            byname = {f.name: f for f in fams}
            fam = byname.get("pygate_upstream_responses")
            if fam is None or sum(s.value for s in fam.samples) != 40:
                return None
            return fams

        fams = wait_until(counted, 10, what="the calls in /metrics")
    for family in (
        "pygate_upstream_responses",
        "pygate_upstream_failures",
        "pygate_upstream_latency_seconds",
    ):
        fam = next(f for f in fams if f.name == family)
        pairs = {(s.labels["upstream"], s.labels["target"]) for s in fam.samples}
        assert pairs == {(NAME, upstreams.addr("echo"))}, (family, pairs)


def test_label_values_are_escaped() -> None:
    row = {
        "upstream": TRICKY,
        "target": "h:1\n",
        "responses": [0, 1, 0, 0, 0],
        "failures": {"connect": 0},
        "latency_us": {"buckets": [1, 0], "sum": 5},
    }
    text = "\n".join(metric_lines([row], [1000])) + "\n"
    fams = list(text_string_to_metric_families(text))
    assert "pygate_forged" not in {f.name for f in fams}, "a name injected a family"
    for f in fams:
        assert {(s.labels["upstream"], s.labels["target"]) for s in f.samples} == {
            (TRICKY, "h:1\n")
        }
