"""`pygate logd`: the log store in its own process, fed over a Unix socket.

Real processes throughout: `pygate serve` with log.daemon.enabled starts logd, the
load is an aiohttp client loop, and rows are counted in the real chDB store against
the requests the gateway's /status counted.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import threading
import uuid

import aiohttp
from support.client import get
from support.configs import simple_config
from support.net import wait_until

LOGD = {"store": "chdb://./data", "batch_size": 200, "daemon": {"enabled": True}}


def logd_config(upstreams, **log):
    return simple_config(upstreams, log={**LOGD, **log})


class Load:
    """Clients hammering the gateway on a thread until stopped; counts the 200s."""

    def __init__(self, gateway, tag: str, clients: int = 4) -> None:
        self.url = gateway.url(f"/echo/{tag}")
        self.clients = clients
        self.ok = 0
        self.failed = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self._client(session) for _ in range(self.clients)))

    async def _client(self, session: aiohttp.ClientSession) -> None:
        while not self._stop.is_set():
            try:
                async with session.get(self.url) as resp:
                    await resp.read()
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.failed += 1
            except aiohttp.ClientError:
                self.failed += 1
                await asyncio.sleep(0.05)

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def process_maps(pid: int) -> str:
    with open(f"/proc/{pid}/maps") as maps:
        return maps.read()


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def count_rows(gateway, tag: str) -> int:
    rows = gateway.logs_query(
        f"SELECT count() AS n FROM pygate.requests WHERE path = '/echo/{tag}'"
    )
    return int(rows[0]["n"])


def test_logd_owns_the_store_and_answers_queries_while_serving(make_gateway, upstreams):
    gateway = make_gateway(logd_config(upstreams))
    status = gateway.status()
    assert status["logd_running"] is True
    logd_pid = status["logd_pid"]
    # The gateway process never loads chDB: only logd maps its library.
    assert "chdb" not in process_maps(gateway.proc.pid).lower()
    assert "chdb" in process_maps(logd_pid).lower()
    sock = gateway.workdir / "data-logd.sock"
    info = os.stat(sock)
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()

    tag = f"q-{uuid.uuid4().hex[:8]}"
    for _ in range(30):
        assert get(gateway.url(f"/echo/{tag}")).status == 200
    wait_until(lambda: count_rows(gateway, tag) == 30, 60, what="30 rows through logd")
    # `logs report` and `bench --save`'s path work while the gateway serves, too.
    report = gateway.cli("logs", "report")
    assert report.returncode == 0, report.stderr
    assert gateway.stop() == 0
    wait_until(lambda: not _alive(logd_pid), 30, what="logd stopped with the gateway")
    assert not sock.exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (not yet reaped) counts as gone.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(") ", 1)[1][0] != "Z"


def test_logd_sigkilled_under_load_loses_nothing(make_gateway, upstreams):
    gateway = make_gateway(logd_config(upstreams))
    tag = f"k-{uuid.uuid4().hex[:8]}"
    before = gateway.status()["requests_total"]
    with Load(gateway, tag) as load:
        wait_until(lambda: load.ok > 300, 60, what="load running")
        first = gateway.status()["logd_pid"]
        os.kill(first, signal.SIGKILL)
        wait_until(lambda: gateway.status()["log_rows_spooled"] > 0, 60, what="batches spooling")
        served_while_down = load.ok
        wait_until(
            lambda: (s := gateway.status())["logd_running"] and s["logd_pid"] != first,
            60,
            what="logd restarted",
        )
        wait_until(lambda: load.ok > served_while_down + 300, 60, what="more load after")
    assert load.failed == 0  # the gateway kept serving throughout
    status = wait_until(
        lambda: (s := gateway.status())["log_spool_rows"] == 0 and s["log_rows_replayed"] > 0 and s,
        60,
        what="the spool replayed into the restarted logd",
    )
    assert status["logd_restarts"] == 1
    requests = status["requests_total"] - before
    assert requests == load.ok
    wait_until(lambda: count_rows(gateway, tag) == requests, 60, what="rows == requests")
    assert gateway.stop() == 0
