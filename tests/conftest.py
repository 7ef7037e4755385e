"""Fixtures: real upstream processes, real gateway processes, nothing mocked.

- `upstreams`: one aiohttp process (session-wide) with a named site per port, see
  support/upstream_app.py for what each site can do.
- `gw`: the session gateway with the main config (support/configs.py).
- `make_gateway`: start a private gateway with any config (reload, shutdown, status,
  limits tests); stopped at the end of the test.
"""

from __future__ import annotations

import socket
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

# The AI gateway's session fixtures (emulators, mcp_upstream, ai_gw): defined once here,
# so every tests/test_ai_*.py module shares one gateway.
from support.ai_setup import ai_gw, emulators, mcp_upstream  # noqa: E402, F401

# The JWKS endpoint the basic-auth and jwt tests share (module-scoped).
from support.auth_plugins import jwks_server  # noqa: E402, F401
from support.configs import SITES, main_config  # noqa: E402
from support.gateway import Gateway, dump_log, running  # noqa: E402
from support.net import free_port  # noqa: E402
from support.upstreams import Upstreams  # noqa: E402


@pytest.fixture(scope="session")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    ups = Upstreams(SITES, tmp_path_factory.mktemp("upstreams") / "upstream.log").start()
    yield ups
    ups.stop()


@pytest.fixture(scope="session")
def dead_addr() -> str:
    """An address nothing listens on (picked free and left unbound)."""
    return f"127.0.0.1:{free_port()}"


@pytest.fixture(scope="session")
def blackhole_addr() -> Iterator[str]:
    """An address where TCP connects hang: a listener that never accepts, with its
    accept queue already full, so the kernel drops further SYNs (loopback only)."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fillers = []
    for _ in range(4):
        client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        client.setblocking(False)
        try:
            client.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(client)
    yield f"127.0.0.1:{port}"
    for sock in [*fillers, server]:
        sock.close()


@pytest.fixture(scope="session")
def gw(
    upstreams: Upstreams,
    dead_addr: str,
    blackhole_addr: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Gateway]:
    config = main_config(upstreams, dead_addr, blackhole_addr)
    with running(Gateway(tmp_path_factory.mktemp("gw-main"), config)) as gateway:
        yield gateway


@pytest.fixture
def make_gateway(tmp_path: Path) -> Iterator[Callable[..., Gateway]]:
    started: list[Gateway] = []

    def make(config: dict[str, Any], watch: bool = False, name: str = "gw") -> Gateway:
        gateway = Gateway(tmp_path / name, config, watch=watch)
        started.append(gateway)
        try:
            gateway.start()
        except Exception:
            dump_log(gateway)
            raise
        return gateway

    yield make
    for gateway in started:
        try:
            if gateway.proc is not None and gateway.proc.poll() is None:
                gateway.stop()
        except Exception:
            dump_log(gateway)
        finally:
            gateway.kill()
