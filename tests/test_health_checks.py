"""Active health checks (upstream health_check.active, core-rs/src/upstream/health.rs).

The gateway is the real process; the targets are real HTTP servers on 127.0.0.1
(support/health_site.py: threads of this test process, so a test can switch one to
failing, close it and open it again on its port). Nothing is timed: each step waits, by
polling, for what the admin API shows, then checks that no client request reached the
failing target or failed.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from support.admin_api import AdminApi, problem_paths
from support.client import get
from support.gateway import run_cli
from support.health_site import UA, Site
from support.net import wait_until
from support.tls_certs import Ca, issue
from support.tls_upstream import EchoUpstream

WAIT = 60


def config(sites: list[Site], active: dict[str, Any], name: str = "pool") -> dict[str, Any]:
    return {
        "upstreams": [
            {
                "name": name,
                "targets": [s.addr for s in sites],
                "retries": 0,
                # Passive health alone would need a failed client request first; the
                # tests show that probes act before any.
                "max_fails": 1000,
                "health_check": {"active": active},
            }
        ],
        "routes": [{"name": name, "paths": [f"/{name}/*"], "upstream": name}],
    }


HTTP_CHECK = {"type": "http", "path": "/health", "host": "health.internal",
              "interval": "100ms", "timeout": "2s", "successes": 2, "failures": 2}  # fmt: skip


def health(gw: Any, upstream: str = "pool") -> dict[str, dict[str, Any]]:
    answer = AdminApi(gw).ok("GET", f"/upstreams/{upstream}/health")
    return {t["target"]: t for t in answer["targets"]}


def wait_health(gw: Any, site: Any, healthy: bool, upstream: str = "pool") -> dict[str, Any]:
    """Wait until `site` (anything with an `addr`) is probed and shown (un)healthy."""

    def there() -> dict[str, Any] | None:
        t = health(gw, upstream)[site.addr]
        probed = t["probe"] is not None and t["probe"]["passed"] + t["probe"]["failed"] > 0
        return t if probed and t["healthy"] is healthy else None

    what = f"{upstream}/{site.addr} {'healthy' if healthy else 'down'} in the admin API"
    return wait_until(there, WAIT, what=what)


def served_by(gw: Any, n: int, path: str = "/pool/x") -> Counter[str]:
    """Send `n` client requests; every one must succeed. Counts who answered."""
    sites: Counter[str] = Counter()
    for _ in range(n):
        resp = get(gw.url(path))
        assert resp.status == 200, (resp.status, resp.body[:300])
        sites[resp.json()["site"]] += 1
    return sites


def test_failing_probe_takes_a_target_out_before_any_request_fails_and_it_comes_back(
    make_gateway,
):
    a, b = Site("a"), Site("b")
    gw = make_gateway(config([a, b], HTTP_CHECK))
    wait_health(gw, a, True)
    wait_health(gw, b, True)
    assert set(served_by(gw, 10)) == {"a", "b"}

    a.failing = True
    down = wait_health(gw, a, False)
    assert down["probe"]["last_status"] == 503
    assert down["probe"]["last_failure"] == "unexpected_status"
    assert not down["ejected"], "taken out by probes, not by failed requests"
    before = a.client_requests()
    assert served_by(gw, 20) == {"b": 20}
    assert a.client_requests() == before, "a client request reached the failing target"

    status = gw.cli("status")
    assert status.returncode == 0, status.stderr
    line = next(ln for ln in status.stdout.splitlines() if a.addr in ln)
    assert "DOWN" in line and "probes failing" in line, status.stdout
    metrics = AdminApi(gw).ok("GET", "/metrics")
    assert f'pygate_upstream_target_healthy{{upstream="pool",target="{a.addr}"}} 0' in metrics
    assert f'pygate_upstream_target_healthy{{upstream="pool",target="{b.addr}"}} 1' in metrics
    assert (
        f'pygate_upstream_health_probes_total{{upstream="pool",target="{a.addr}",result="failed"}}'
        in metrics
    )

    a.failing = False
    wait_health(gw, a, True)
    assert set(served_by(gw, 10)) == {"a", "b"}
    # Probes: GET the configured path, with the configured Host and pygate's User-Agent.
    assert a.probes() and set(a.probes()) == {("/health", "health.internal", UA)}


def test_a_closed_target_is_taken_out_by_tcp_probes_and_comes_back(make_gateway):
    a, b = Site("a"), Site("b")
    check = {"type": "tcp", "interval": "100ms", "timeout": "2s", "successes": 1, "failures": 1}
    gw = make_gateway(config([a, b], check))
    wait_health(gw, a, True)
    assert set(served_by(gw, 10)) == {"a", "b"}

    a.close()
    down = wait_health(gw, a, False)
    assert down["probe"]["last_failure"] == "connect_failed"
    assert served_by(gw, 20) == {"b": 20}
    a.open()  # the same port
    wait_health(gw, a, True)
    assert set(served_by(gw, 10)) == {"a", "b"}
    assert a.probes() == [], "a TCP check sends no request"


def test_probe_state_survives_reloads_and_probes_follow_the_config(make_gateway):
    a, b, c = Site("a"), Site("b"), Site("c")
    first = config([a, b], HTTP_CHECK)
    gw = make_gateway(first)
    a.failing = True
    down = wait_health(gw, a, False)

    # A reload that keeps the upstream (and adds one): a stays out, from the first request.
    second = config([a, b], HTTP_CHECK)
    extra = config([c], HTTP_CHECK, name="more")
    second["upstreams"] += extra["upstreams"]
    second["routes"] += extra["routes"]
    gw.write_config(second)
    assert gw.reload() == "reloaded"
    before = a.client_requests()
    assert served_by(gw, 20) == {"b": 20}
    assert a.client_requests() == before
    kept = health(gw)[a.addr]
    assert not kept["healthy"]
    assert kept["probe"]["failed"] >= down["probe"]["failed"], "probe counters were reset"
    # The added upstream's target is probed.
    wait_until(lambda: c.probes(), WAIT, what="probes of the added upstream's target")
    wait_health(gw, c, True, upstream="more")

    # Removed from the config: no health to show, and its probes are stopped.
    gw.write_config(first)
    assert gw.reload() == "reloaded"
    code, answer = AdminApi(gw).get("/upstreams/more/health")
    assert code == 404 and answer["error"] == "not_found", answer
    a.failing = False
    wait_health(gw, a, True)
    assert set(served_by(gw, 10)) == {"a", "b"}


def test_http_probes_go_the_way_requests_do_over_tls_and_http2(make_gateway, tmp_path):
    for d in ("ca", "other", "leaf"):
        (tmp_path / d).mkdir()
    ca, other = Ca(tmp_path / "ca"), Ca(tmp_path / "other", "another CA")
    leaf = issue(tmp_path / "leaf", ["upstream.test"], ca)
    tls = {"scheme": "https", "ca_file": str(ca.cert), "sni": "upstream.test"}
    with EchoUpstream(leaf.cert, leaf.key) as up:
        upstreams = [
            {"name": "h1", "targets": [up.addr], **tls},
            {"name": "h2", "targets": [up.addr], **tls, "protocol": "h2"},
            # Its certificate is not signed by this CA: every probe fails the handshake.
            {"name": "untrusted", "targets": [up.addr], **tls, "ca_file": str(other.cert)},
        ]
        for u in upstreams:
            u["health_check"] = {"active": HTTP_CHECK}
        routes = [{"name": u["name"], "paths": [f"/{u['name']}/*"], "upstream": u["name"]}
                  for u in upstreams]  # fmt: skip
        gw = make_gateway({"upstreams": upstreams, "routes": routes})
        for name in ("h1", "h2"):
            assert wait_health(gw, up, True, upstream=name)["probe"]["last_status"] == 200
        down = wait_health(gw, up, False, upstream="untrusted")
        assert down["probe"]["last_failure"] == "tls_failed"
        assert down["probe"]["passed"] == 0
        assert get(gw.url("/h2/x")).json()["protocol"] == "h2"


def test_checks_set_through_the_admin_api_go_live_and_bad_ones_name_the_field(make_gateway):
    a, b = Site("a"), Site("b")
    plain = config([a, b], HTTP_CHECK)
    del plain["upstreams"][0]["health_check"]
    gw = make_gateway(plain)
    api = AdminApi(gw)
    assert all(t["probe"] is None for t in health(gw).values())

    status, answer = api.patch("/upstreams/pool", {"health_check": {"active": {"failures": 0}}})
    assert status == 400, answer
    assert problem_paths(answer) == ["upstreams[0].health_check.active.failures"]
    bad_type = {"health_check": {"active": {"type": "udp"}}}
    status, answer = api.patch("/upstreams/pool", bad_type)
    assert status == 400 and problem_paths(answer) == ["upstreams[0].health_check.active.type"]
    assert a.probes() == [] and b.probes() == []

    api.ok("PATCH", "/upstreams/pool", {"health_check": {"active": HTTP_CHECK}})
    a.failing = True
    wait_health(gw, a, False)
    before = a.client_requests()
    assert served_by(gw, 10) == {"b": 10}
    assert a.client_requests() == before
    # Checks off again: the target is back at once (passive health only), probes stop.
    api.ok("PATCH", "/upstreams/pool", {"health_check": None})
    a.failing = False
    assert all(t["probe"] is None and t["healthy"] for t in health(gw).values())
    assert set(served_by(gw, 10)) == {"a", "b"}


def test_bad_health_check_config_names_file_line_and_field(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(
        "listen: 127.0.0.1:0\n"
        "upstreams:\n"
        "  - name: pool\n"
        "    targets: [127.0.0.1:9]\n"
        "    health_check:\n"
        "      active:\n"
        "        type: http\n"
        "        path: health\n"
        "        expected_statuses: [200, 700]\n"
        "        failures: 0\n"
        "        probe_every: 1s\n"
        "routes:\n"
        "  - {name: r, paths: [/], upstream: pool}\n"
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, res.stdout + res.stderr
    err = res.stderr
    prefix = f"{path}:"
    for line, field in [
        (8, "upstreams[0].health_check.active.path"),
        (9, "upstreams[0].health_check.active.expected_statuses[1]"),
        (10, "upstreams[0].health_check.active.failures"),
        (11, "upstreams[0].health_check.active.probe_every"),
    ]:
        assert f"{prefix}{line}: {field}:" in err, err


def test_zero_interval_is_a_config_error(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(
        "listen: 127.0.0.1:0\n"
        "upstreams:\n"
        "  - name: pool\n"
        "    targets: [127.0.0.1:9]\n"
        "    health_check: {active: {interval: 0s}}\n"
        "routes:\n"
        "  - {name: r, paths: [/], upstream: pool}\n"
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, res.stdout + res.stderr
    assert "upstreams[0].health_check.active.interval: expected a duration > 0" in res.stderr
    assert f"{path}:5:" in res.stderr, res.stderr
