"""A gateway for the built-in Python plugin tests: echo, stable/canary and dead upstreams,
plus whatever routes a test module brings (each test uses its own routes).

A module declares its gateway with `gw = builtin_gateway(plugin_routes)`: a module-scoped
fixture named `gw` (it shadows the session gateway there)."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .configs import upstream
from .gateway import Gateway, run_cli, running
from .upstreams import Upstreams


def run_gateway(
    workdir: Path, upstreams: Upstreams, dead_addr: str, routes: list[dict[str, Any]]
) -> Iterator[Gateway]:
    """Start it, yield it, stop it (for a module-scoped fixture)."""
    config = {
        "workers": 2,
        "upstreams": [
            upstream("echo", [upstreams.addr("echo")]),
            upstream("stable", [upstreams.addr("rr1")]),
            upstream("canary", [upstreams.addr("rr2")]),
            upstream("dead", [dead_addr], retries=0),
        ],
        "routes": routes,
    }
    with running(Gateway(workdir, config)) as gateway:
        yield gateway


def builtin_gateway(routes: Callable[[], list[dict[str, Any]]]) -> Any:
    """The module-scoped `gw` fixture of a plugin test module: a gateway serving `routes()`."""

    @pytest.fixture(scope="module", name="gw")
    def gateway(upstreams, dead_addr, tmp_path_factory) -> Iterator[Gateway]:
        workdir = tmp_path_factory.mktemp("gw-builtins")
        yield from run_gateway(workdir, upstreams, dead_addr, routes())

    return gateway


JSON = {"Content-Type": "application/json"}


def sent_body(resp) -> dict:
    """The JSON body the echo upstream received."""
    return json.loads(resp.json()["body"])


def check_plugins(tmp_path: Path, plugins_yaml: str) -> subprocess.CompletedProcess:
    """`pygate check` on a one-route config whose `plugins:` is the given YAML flow text."""
    path = tmp_path / "gw.yaml"
    path.write_text(
        "listen: 127.0.0.1:1\n"
        "upstreams: [{name: u, targets: ['127.0.0.1:9']}]\n"
        f"routes: [{{name: r, paths: ['/x'], upstream: u, plugins: {plugins_yaml}}}]\n"
    )
    return run_cli("check", "--config", str(path))
