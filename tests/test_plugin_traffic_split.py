"""traffic-split: routes a request to another upstream by header or by percentage, through
the real gateway (stable is site rr1, canary rr2); then the weighted pick on its own.
"""

from __future__ import annotations

import asyncio

import aiohttp
from support.builtin_gateway import builtin_gateway, check_plugins
from support.client import TIMEOUT, afetch, get
from support.configs import route


def plugin_routes() -> list[dict]:
    return [
        route(
            "split-header",
            ["/split-header/*"],
            "stable",
            plugins={
                "traffic-split": {
                    "rules": [{"headers": {"X-Canary": ["1", "yes"]}, "upstream": "canary"}]
                }
            },
        ),
        route(
            "split-percent",
            ["/split-percent/*"],
            "stable",
            plugins={"traffic-split": {"percent": [{"upstream": "canary", "percent": 25}]}},
        ),
    ]


gw = builtin_gateway(plugin_routes)


def test_traffic_split_by_header(gw) -> None:
    for value in ("1", "yes"):
        resp = get(gw.url("/split-header/x"), headers={"X-Canary": value})
        assert resp.json()["target"] == "rr2", value
    for headers in ({}, {"X-Canary": "0"}):
        assert get(gw.url("/split-header/x"), headers=headers).json()["target"] == "rr1"


def test_traffic_split_by_percentage(gw) -> None:
    async def run() -> list[str]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> str:
                async with sem:
                    resp = await afetch(session, "GET", gw.url(f"/split-percent/{i}"))
                    assert resp.status == 200, resp.body
                    return resp.json()["target"]

            return await asyncio.gather(*(one(i) for i in range(400)))

    targets = asyncio.run(run())
    canary = targets.count("rr2")
    assert targets.count("rr1") + canary == 400
    assert 80 <= canary <= 120, canary  # 25% of 400, within 5 points


def test_traffic_split_unknown_upstream_is_a_config_error(tmp_path) -> None:
    done = check_plugins(tmp_path, "{traffic-split: {percent: [{upstream: nowhere, percent: 10}]}}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "routes[0].plugins.traffic-split.percent[0].upstream" in done.stderr, done.stderr
    assert 'unknown upstream "nowhere"' in done.stderr


def test_smooth_weighted_split_is_exact_and_spread() -> None:
    from pygate.plugins.builtin.traffic_split import SmoothWeighted

    split = SmoothWeighted([("canary", 10.0), (None, 90.0)])
    picks = [split.pick() for _ in range(100)]
    assert picks.count("canary") == 10
    # Spread out: never two canary picks within a run of 10.
    positions = [i for i, p in enumerate(picks) if p == "canary"]
    assert all(b - a == 10 for a, b in zip(positions, positions[1:], strict=False))
