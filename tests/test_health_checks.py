"""Active health checks (upstream health_check.active, core-rs/src/upstream/health.rs).

The gateway is the real process; the targets are real HTTP servers on 127.0.0.1 (threads
of this test process, so a test can switch one to failing, close it and open it again on
its port). Nothing is timed: each step waits, by polling, for what the admin API shows,
then checks that no client request reached the failing target or failed.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections import Counter
from typing import Any

from support.admin_api import AdminApi
from support.client import get
from support.gateway import run_cli
from support.net import wait_until

UA = "pygate-health-check"
WAIT = 60


class Site:
    """One target: answers 200 {"site": name}, or, when failing, 503 on /health and 500
    elsewhere. It records every request it gets (path, Host, User-Agent)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.failing = False
        self.seen: list[tuple[str, str, str]] = []
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self.port = 0
        self.open()

    @property
    def addr(self) -> str:
        return f"127.0.0.1:{self.port}"

    def open(self) -> None:
        site = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                seen = (self.path, self.headers.get("Host", ""), self.headers.get("User-Agent", ""))
                with site._lock:
                    site.seen.append(seen)
                ok = not site.failing
                status = 200 if ok else 503 if self.path == "/health" else 500
                body = json.dumps({"site": site.name, "ok": ok}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        http.server.ThreadingHTTPServer.allow_reuse_address = True
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop listening: connects are refused until `open()`."""
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self._server = None

    def probes(self) -> list[tuple[str, str, str]]:
        with self._lock:
            return [s for s in self.seen if s[2] == UA]

    def client_requests(self) -> int:
        with self._lock:
            return sum(1 for s in self.seen if s[2] != UA)


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


def wait_health(gw: Any, site: Site, healthy: bool, upstream: str = "pool") -> dict[str, Any]:
    def there() -> dict[str, Any] | None:
        t = health(gw, upstream)[site.addr]
        probed = t["probe"] is not None and t["probe"]["passed"] + t["probe"]["failed"] > 0
        return t if probed and t["healthy"] is healthy else None

    what = f"{site.name} {'healthy' if healthy else 'down'} in the admin API"
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
