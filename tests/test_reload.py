"""Config reload under load (SIGHUP and --watch): zero failed requests, new routes go
live; a bad reload is refused and the old config keeps serving."""

from __future__ import annotations

import asyncio
import copy
import signal
import threading
import time
from collections import Counter

import aiohttp
from support.client import TIMEOUT, afetch, assert_json_error, get
from support.configs import route, simple_config
from support.gateway import REFUSED_LINE, RELOADED_LINE
from support.net import wait_until

from pygate.server.reload import SETTLE_S, WATCH_INTERVAL_S

CLIENTS = 4
RELOADS = 4


class Hammer:
    """Client loops in a background thread until stopped; records every outcome."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.outcomes: Counter[str] = Counter()
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _client(self, session: aiohttp.ClientSession, n: int) -> None:
        # Bounded in count as well as by the stop flag.
        for i in range(100_000):
            if self._stop.is_set():
                return
            try:
                resp = await afetch(session, "GET", f"{self.url}?c={n}&i={i}")
                self.outcomes[str(resp.status)] += 1
                if resp.status != 200:
                    self.failures.append(f"status {resp.status}: {resp.body[:200]!r}")
            except Exception as exc:  # noqa: BLE001 - every failure counts
                self.outcomes["exception"] += 1
                self.failures.append(repr(exc))

    async def _main(self) -> None:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            await asyncio.gather(*(self._client(session, n) for n in range(CLIENTS)))

    def __enter__(self) -> Hammer:
        self._thread.start()
        wait_until(lambda: sum(self.outcomes.values()) >= 20, 60, what="hammer warm-up")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)
        assert not self._thread.is_alive(), "client loop did not stop"


def with_new_route(cfg: dict, i: int) -> dict:
    cfg = copy.deepcopy(cfg)
    cfg["routes"].append(route(f"new{i}", [f"/new{i}/*"], "echo"))
    return cfg


def test_sighup_reloads_under_load(make_gateway, upstreams):
    base = simple_config(upstreams)
    gw = make_gateway(base)
    assert get(gw.url("/new0/x")).status == 404

    cfg = base
    with Hammer(gw.url("/echo/hammer")) as hammer:
        for i in range(RELOADS):
            cfg = with_new_route(cfg, i)
            gw.write_config(cfg)
            assert gw.reload() == "reloaded", gw.log_text()[-2000:]
            resp = get(gw.url(f"/new{i}/x"))
            assert resp.status == 200 and resp.json()["path"] == f"/new{i}/x"
            # Wait for more traffic so the next reload also happens under load.
            seen = sum(hammer.outcomes.values())
            wait_until(lambda s=seen: sum(hammer.outcomes.values()) >= s + 20, 60)

    assert hammer.failures == [], hammer.failures[:5]
    assert hammer.outcomes["200"] >= 20 * (RELOADS + 1)
    status = gw.status()
    assert status["reloads_total"] == RELOADS
    assert status["reloads_refused"] == 0


def test_watch_reloads_on_file_change_under_load(make_gateway, upstreams):
    base = simple_config(upstreams)
    gw = make_gateway(base, watch=True)

    cfg = base
    with Hammer(gw.url("/echo/hammer")) as hammer:
        for i in range(3):
            ok_before = gw.log_count(RELOADED_LINE)
            bad_before = gw.log_count(REFUSED_LINE)
            cfg = with_new_route(cfg, i)
            gw.write_config(cfg)
            assert gw.wait_reload_outcome(ok_before, bad_before) == "reloaded"
            wait_until(
                lambda i=i: get(gw.url(f"/new{i}/x")).status == 200, 30, what=f"/new{i} live"
            )
            seen = sum(hammer.outcomes.values())
            wait_until(lambda s=seen: sum(hammer.outcomes.values()) >= s + 20, 60)

    assert hammer.failures == [], hammer.failures[:5]
    assert hammer.outcomes["200"] >= 80


def test_watch_waits_for_a_save_in_progress(make_gateway, upstreams):
    """An in-place save truncates first: a writer paused past the poll interval (a busy
    host deschedules it) leaves an empty file that must not be read as the new config."""
    base = simple_config(upstreams)
    gw = make_gateway(base, watch=True)
    cfg = with_new_route(base, 7)
    gw.write_config(cfg)  # the text the paused writer will write
    text = gw.config_path.read_text()
    gw.write_config(base)
    ok_before, bad_before = gw.log_count(RELOADED_LINE), gw.log_count(REFUSED_LINE)
    with open(gw.config_path, "w") as f:
        f.flush()  # truncated, nothing written yet
        # The paused writer (simulated, not waited on): a few polls and settle times,
        # so the watcher sees the empty file. Old watcher: "reload refused: the file
        # is empty".
        time.sleep(3 * (WATCH_INTERVAL_S + SETTLE_S))
        f.write(text)
    assert gw.wait_reload_outcome(ok_before, bad_before) == "reloaded", gw.log_text()[-2000:]
    assert get(gw.url("/new7/x")).status == 200
    assert gw.log_count(REFUSED_LINE) == bad_before, gw.log_text()[-2000:]


def test_bad_reloads_are_refused_and_old_config_keeps_serving(make_gateway, upstreams):
    base = simple_config(upstreams)
    gw = make_gateway(base)
    refused = 0

    # 1. Fails config validation (Python side).
    bad = with_new_route(base, 1)
    bad["routes"][-1]["plugins"] = {"rate-limit": {"rate": "fast"}}
    # 2. Fails the core's check (path conflict).
    conflict = with_new_route(base, 2)
    conflict["routes"][-1]["paths"] = ["/echo/*"]
    # 3. Changes `listen`, which needs a restart.
    moved = with_new_route(base, 3)
    moved["listen"] = "127.0.0.1:1"
    # 4. Changes `workers`, which needs a restart too.
    more_workers = with_new_route(base, 3)
    more_workers["workers"] = 3
    # 5. Not even YAML.
    cases = [(bad, None), (conflict, None), (moved, None), (more_workers, None)]
    for cfg, raw in [*cases, (None, "routes: [oops\n")]:
        with Hammer(gw.url("/echo/hammer")) as hammer:
            if raw is not None:
                gw.write_config(raw=raw)
            else:
                gw.write_config(copy.deepcopy(cfg))
            assert gw.reload() == "refused", gw.log_text()[-2000:]
            refused += 1
        assert hammer.failures == [], hammer.failures[:5]
        assert get(gw.url("/echo/still")).status == 200
        for i in (1, 2, 3):
            assert_json_error(get(gw.url(f"/new{i}/x")), 404, "no_route")

    # `pygate status` finds the admin listener through the config file: make it good again
    # (no reload).
    gw.write_config(copy.deepcopy(base))
    refusals = [line for line in gw.log_text().splitlines() if REFUSED_LINE in line]
    assert len(refusals) == refused
    assert "rate" in refusals[0]
    status = gw.status()
    assert status["reloads_refused"] == refused
    assert status["reloads_total"] == 0

    # A good config afterwards still reloads.
    gw.write_config(with_new_route(base, 9))
    assert gw.reload() == "reloaded"
    assert get(gw.url("/new9/x")).status == 200
    assert gw.proc.poll() is None
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(60) == 0


def test_request_in_flight_finishes_on_the_old_config(make_gateway, upstreams):
    base = simple_config(upstreams)
    base["routes"].append(route("old", ["/old/*"], "echo"))
    gw = make_gateway(base)

    async def scenario():
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            slow = asyncio.create_task(
                afetch(session, "GET", gw.url("/old/x?mode=slow&delay=3&gate=reload-inflight"))
            )
            await asyncio.to_thread(
                wait_until,
                lambda: upstreams.inflight("reload-inflight") == 1,
                30,
                what="the slow request to reach the upstream",
            )
            # Reload to a config without the route while the request is in flight.
            gw.write_config(simple_config(upstreams))
            assert await asyncio.to_thread(gw.reload) == "reloaded"
            assert (await afetch(session, "GET", gw.url("/old/y"))).status == 404
            return await slow

    resp = asyncio.run(scenario())
    assert resp.status == 200
    assert resp.json()["path"] == "/old/x"
