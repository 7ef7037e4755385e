"""/healthz and /readyz on the admin listener: what an orchestrator's probes see.

A real gateway (`python -m pygate serve`), real upstreams, plain HTTP clients without
the admin token (a probe sends none). "Not ready" is made for real: a ClickHouse URL on a
closed port with the smallest spool, filled by requests until nothing more fits.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from support.client import get
from support.configs import simple_config
from support.net import free_port, wait_until


def probe(gateway, path: str) -> tuple[int, dict, dict]:
    request = urllib.request.Request(gateway.admin_url(path))  # no Authorization header
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), dict(response.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def test_healthz_and_readyz_answer_without_the_token(make_gateway, upstreams):
    gateway = make_gateway(simple_config(upstreams, admin={"token": "probe-test-admin-token"}))
    status, body, headers = probe(gateway, "/healthz")
    assert (status, body) == (200, {"status": "alive"})
    assert headers["Content-Type"].startswith("application/json")
    assert headers["Cache-Control"] == "no-store"

    status, body, _ = probe(gateway, "/readyz")
    assert status == 200, body
    assert body == {
        "status": "ready",
        "checks": {"config": "loaded", "proxy": "listening", "log_store": "writing"},
    }
    # The token still guards everything else.
    assert probe(gateway, "/status")[0] == 401


def test_readyz_spooling_is_ready_and_a_full_spool_is_not(make_gateway, upstreams):
    down = f"clickhouse://default@127.0.0.1:{free_port()}/pygate"
    log = {"store": down, "spool_dir": "./spool", "spool_max_bytes": "1m", "batch_size": 200,
           "flush_interval": 50}  # fmt: skip
    gateway = make_gateway(simple_config(upstreams, log=log, admin={"auth": "none"}))
    for i in range(20):
        assert get(gateway.url(f"/echo/r{i}")).status == 200
    wait_until(lambda: gateway.status()["log_rows_pending_retry"] >= 20, 60, what="rows held back")
    status, body, _ = probe(gateway, "/readyz")
    assert status == 200 and body["checks"]["log_store"] == "spooling", body

    def send(start: int) -> None:
        for i in range(start, start + 250):
            get(gateway.url(f"/echo/fill-{i}-" + "x" * 1500))

    def full() -> bool:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(send, range(0, 1000, 250)))
        return probe(gateway, "/readyz")[0] == 503

    wait_until(full, 240, interval=0.1, what="the spool full")
    status, body, _ = probe(gateway, "/readyz")
    assert status == 503
    assert body == {
        "status": "not_ready",
        "not_ready": ["log_store"],
        "checks": {"config": "loaded", "proxy": "listening", "log_store": "spool_full"},
    }
    assert probe(gateway, "/healthz")[0] == 200  # alive all the same: no restart wanted
