"""Micro benchmarks of the core's per-request functions (pytest-benchmark).

Run:    pytest benchmarks/micro --benchmark-only
Check against the committed baseline (fails when a median doubles; the machines are noisy):
        pytest benchmarks/micro --benchmark-only --benchmark-storage=benchmarks/micro/baseline \
               --benchmark-compare=0001 --benchmark-compare-fail=median:100%
Save a new baseline after an intended change:
        pytest benchmarks/micro --benchmark-only --benchmark-storage=benchmarks/micro/baseline \
               --benchmark-save=baseline
"""

from __future__ import annotations

import json

import pytest

from pygate import _core

ROUTES = 1_000
CONSUMERS = 100_000


def core_config() -> dict:
    """1,000 routes with a {param} each and 100,000 consumers' keys: the suite's sizes."""
    return {
        "listen": "127.0.0.1:0",
        "workers": 1,
        "upstreams": [{"name": "u", "targets": [{"addr": "127.0.0.1:9"}]}],
        "consumers": [{"name": f"c{i}", "keys": [f"key-{i:06d}"]} for i in range(CONSUMERS)],
        "routes": [
            {"name": f"svc{i}", "paths": [f"/svc{i}/items/{{id}}"], "upstream": "u"}
            for i in range(ROUTES)
        ]
        + [
            {
                "name": "limited",
                "paths": ["/limited"],
                "upstream": "u",
                "plugins": {
                    "key-auth": {"hide_credentials": True},
                    # Never refuses during a benchmark: what is measured is the check itself.
                    "rate-limit": {"rate": 10**12, "per_ms": 1000, "by": "consumer"},
                },
            }
        ],
    }


@pytest.fixture(scope="session")
def hot_paths() -> _core.HotPaths:
    return _core.HotPaths(json.dumps(core_config()))
