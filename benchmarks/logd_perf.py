#!/usr/bin/env python3
"""logd: sustained ingest into chDB, the gateway's RSS with logd vs the in-process store,
and the proxy process's CPU per request with logging on vs off.

1. Ingest: a real `pygate logd` (chDB store) fed by a batch feeder that speaks logd's
   real protocol through the gateway's own client (pygate.logd.client.LogdStore, one
   INSERT frame per batch) with the core's real RowBinary record
   (`_core.HotPaths.sample_record`), `--feeders` connections at once. The gateway
   itself cannot produce 200k requests/s on this 2-core machine (about 54k on one core,
   benchmarks/RESULTS.md "log-ingest"), hence the feeder. Zero loss is checked: rows
   in the store == rows acknowledged.
2. Gateway (`workers: 1`, on core 0) behind nginx (core 1) with `pygate bench` (core 1),
   three modes alternating: logging off (`log.enabled: false`), logging through logd
   (the default), logging with the store in the gateway's process
   (`log.daemon.enabled: false`). Per run: CPU of the gateway process per request
   (benchmarks/suite/cputime.py, logd counted apart), logd's CPU per request, and the
   VmRSS of the gateway process (and of logd) after the load. Rows == requests checked
   after each logging run.

    python benchmarks/logd_perf.py [--runs 3] [--duration 8] [--batches 40]
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite.cputime import Sampler, per_request  # noqa: E402
from benchmarks.suite.procs import (  # noqa: E402
    LOAD_CORE,
    PROXY_CORE,
    free_port,
    run_json,
    stop,
    wait_http,  # noqa: E402
)
from benchmarks.suite.report import median, utc_now, write_section  # noqa: E402
from benchmarks.suite.upstream import start_upstream  # noqa: E402

GATEWAY = """\
listen: 127.0.0.1:{port}
workers: 1
admin: {{listen: "127.0.0.1:{admin_port}", auth: none}}
log:
  store: chdb://./data
  enabled: {enabled}
  daemon: {{enabled: {daemon}}}
upstreams: [{{name: app, targets: ["{upstream}"], keepalive: 256}}]
routes: [{{name: api, paths: ["/api/*"], upstream: app}}]
"""
# mode -> (log.enabled, log.daemon.enabled)
MODES = {"off": ("false", "true"), "logd": ("true", "true"), "in-process": ("true", "false")}
CORE_CONFIG = {
    "listen": "127.0.0.1:0",
    "workers": 1,
    "upstreams": [{"name": "u", "targets": [{"addr": "127.0.0.1:9"}]}],
    "consumers": [],
    "routes": [{"name": "r", "paths": ["/r"], "upstream": "u"}],
}


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def status(admin_port: int) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=10) as r:
        return json.loads(r.read())


# ----- 1. ingest through logd -----------------------------------------------------------


def ingest(workdir: Path, batches: int, batch_rows: int, feeders: int) -> dict:
    from pygate import _core
    from pygate.config import load_config
    from pygate.logd.client import LogdStore

    workdir.mkdir(parents=True)
    config = workdir / "logd.yaml"
    config.write_text("listen: 127.0.0.1:1\nlog: {store: chdb://./data}\n")
    with open(workdir / "logd.log", "ab") as out:
        logd = subprocess.Popen(
            [sys.executable, "-m", "pygate", "logd", "--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True,
        )  # fmt: skip
    loaded = load_config(str(config), import_plugins=False)
    store = LogdStore(loaded, role="bench")
    deadline = time.monotonic() + 120
    while not store.ping():
        if logd.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"logd did not start; see {workdir}/logd.log")
        time.sleep(0.1)
    row = _core.HotPaths(json.dumps(CORE_CONFIG)).sample_record("RowBinary")
    batch = row * batch_rows  # the core's bytes, as its shipper hands them over
    todo = list(range(batches))
    lock = threading.Lock()
    acked = [0]

    def feed() -> None:
        while True:
            with lock:
                if not todo:
                    return
                n = todo.pop()
            store.insert_row_binary(batch, f"bench-ingest-{n}")
            with lock:
                acked[0] += batch_rows

    threads = [threading.Thread(target=feed) for _ in range(feeders)]
    started = time.perf_counter()
    with Sampler(logd.pid) as sampler:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    elapsed = time.perf_counter() - started
    stored = int(store.query("SELECT count() FROM pygate.requests", "TSVRaw"))
    cpu = sampler.window(sampler.samples[0][0], sampler.samples[-1][0], logd=True)
    store.close()
    stop(logd)
    return {
        "rows_acked": acked[0],
        "rows_stored": stored,
        "seconds": elapsed,
        "rows_per_s": acked[0] / elapsed,
        "logd_cpu_s": cpu.total_s,
        "batch_bytes": len(batch),
    }


# ----- 2. the gateway: CPU per request and RSS --------------------------------------------


@dataclass
class Run:
    mode: str
    rps: float
    requests: int
    proxy_us: float  # gateway process CPU per request
    logd_us: float
    gateway_rss_mb: float
    logd_rss_mb: float
    rows: int
    requests_total: int


def gateway_run(workdir: Path, mode: str, upstream: str, args: argparse.Namespace) -> Run:
    workdir.mkdir(parents=True)
    port, admin_port = free_port(), free_port()
    enabled, daemon = MODES[mode]
    config = workdir / "gateway.yaml"
    config.write_text(
        GATEWAY.format(
            port=port, admin_port=admin_port, upstream=upstream, enabled=enabled, daemon=daemon
        )
    )
    with open(workdir / "gateway.log", "ab") as out:
        gateway = subprocess.Popen(
            ["taskset", "-c", PROXY_CORE, sys.executable, "-m", "pygate", "serve"]
            + ["--config", str(config)],
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api/x"
    try:
        wait_http(f"http://127.0.0.1:{admin_port}/status")
        assert wait_http(url) == 200
        bench(url, args.connections, 2)  # warm-up: pools, the first batches, chDB's caches
        with Sampler(gateway.pid) as sampler:
            report = bench(url, args.connections, args.duration)
            end = time.monotonic()
        start = end - args.duration
        requests = report["requests"]
        proxy = per_request(sampler.window(start, end), requests)
        logd = per_request(sampler.window(start, end, logd=True), requests)
        final = status(admin_port)
        logd_pid = final.get("logd_pid", 0)
        gateway_rss = rss_kb(gateway.pid) / 1024
        logd_rss = rss_kb(logd_pid) / 1024 if logd_pid else 0.0
    finally:
        stop(gateway)
    rows = stored_rows(config) if enabled == "true" else 0
    return Run(
        mode, report["requests_per_s"], requests, proxy.total_us, logd.total_us,
        gateway_rss, logd_rss, rows, final["requests_total"],
    )  # fmt: skip


def bench(url: str, connections: int, seconds: float) -> dict:
    cmd = ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "pygate", "bench", url]
    cmd += ["-c", str(connections), "-d", f"{seconds}s", "--json", "--no-progress"]
    return run_json(cmd, timeout=seconds + 180)


def stored_rows(config: Path) -> int:
    cmd = [sys.executable, "-m", "pygate", "logs", "query", "--config", str(config)]
    cmd += ["SELECT count() AS n FROM pygate.requests", "--format", "json"]
    return int(run_json(cmd, timeout=300)[0]["n"])


def load_line() -> str:
    with open("/proc/loadavg") as f:
        one, five, fifteen = f.read().split()[:3]
    return f"load average {one} / {five} / {fifteen} (1/5/15 min)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="runs per gateway mode")
    parser.add_argument("--duration", type=float, default=8)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--batches", type=int, default=40, help="ingest: batches to send")
    parser.add_argument("--batch-rows", type=int, default=100_000)
    parser.add_argument("--feeders", type=int, default=2, help="ingest: connections at once")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    if not shutil.which("nginx") or not shutil.which("taskset"):
        sys.exit("needs nginx (apt-get install nginx-light) and taskset")
    tmp = Path(tempfile.mkdtemp(prefix="pygate-logd-perf-"))
    tmp.chmod(0o755)
    load_before = load_line()
    feed = ingest(tmp / "ingest", args.batches, args.batch_rows, args.feeders)
    print(f"ingest: {feed}", file=sys.stderr)
    nginx, upstream = start_upstream(tmp / "upstream")
    runs: list[Run] = []
    try:
        order = list(MODES)
        for index in range(args.runs):
            for mode in order if index % 2 == 0 else order[::-1]:
                run = gateway_run(tmp / f"{mode}-{index}", mode, upstream, args)
                print(f"  {run}", file=sys.stderr)
                runs.append(run)
    finally:
        stop(nginx, sig=3)
    text = render(args, feed, runs, load_before, load_line())
    print(text)
    if not args.no_write:
        write_section("logd-perf", text)
    shutil.rmtree(tmp, ignore_errors=True)
    lossless = feed["rows_stored"] == feed["rows_acked"] and all(
        r.rows == r.requests_total for r in runs if r.mode != "off"
    )
    return 0 if lossless else 1


def render(args, feed: dict, runs: list[Run], load_before: str, load_after: str) -> str:
    def med(mode: str, field: str) -> float:
        return median([getattr(r, field) for r in runs if r.mode == mode])

    command = "python " + shlex.join(["benchmarks/logd_perf.py", *sys.argv[1:]])
    off, logd, inproc = (med(m, "proxy_us") for m in ("off", "logd", "in-process"))
    lossless = feed["rows_stored"] == feed["rows_acked"]
    lines = [
        f"## logd: ingest, gateway RSS, CPU per request with logging on/off ({utc_now()})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine load: {load_before} before, {load_after} after; other helpers were "
        "building and testing on the same 2 cores, so only ratios and CPU per request "
        "are quoted, never absolute req/s.",
        "",
        f"**Ingest through logd** (a direct batch feeder: the gateway's LogdStore client, "
        f"{args.feeders} connections, {args.batches} batches of {args.batch_rows:,} rows of "
        f"the core's RowBinary record, {feed['batch_bytes'] / 1e6:.1f} MB each, into chDB "
        f"with rollups): **{feed['rows_per_s']:,.0f} rows/s** sustained over "
        f"{feed['seconds']:.1f} s; rows stored / acknowledged: {feed['rows_stored']:,} / "
        f"{feed['rows_acked']:,} ({'zero loss' if lossless else 'LOSS'}); logd's CPU "
        f"{1e6 * feed['logd_cpu_s'] / max(feed['rows_acked'], 1):.2f} us per row. "
        f"That is **{feed['rows_acked'] / max(feed['logd_cpu_s'], 1e-9):,.0f} rows per "
        "second of logd's CPU**, the rate logd sustains on a core of its own (the wall-clock "
        "rate above shares 2 cores with the feeder and the machine's other work). "
        "The feeder stands in for gateways because one gateway tops out near 54k "
        "requests/s on one core here.",
        "",
        f"**Gateway** `workers: 1` on core {PROXY_CORE}, nginx upstream and `pygate bench "
        f"-c {args.connections} -d {args.duration:g}s` on core {LOAD_CORE} (logd unpinned); "
        f"{args.runs} runs per mode, alternating; medians.",
        "",
        "| mode | proxy CPU us/req | logd CPU us/req | gateway RSS MB | logd RSS MB | "
        "rows / requests |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for mode in MODES:
        mine = [r for r in runs if r.mode == mode]
        rows = ", ".join(f"{r.rows:,} / {r.requests_total:,}" for r in mine)
        lines.append(
            f"| {mode} | {med(mode, 'proxy_us'):.1f} | {med(mode, 'logd_us'):.1f} | "
            f"{med(mode, 'gateway_rss_mb'):.0f} | {med(mode, 'logd_rss_mb'):.0f} | "
            f"{rows if mode != 'off' else '(not logged)'} |"
        )
    lines += [
        "",
        f"- Logging on (through logd) vs off, proxy process CPU per request: "
        f"**{logd / off:.3f}x** ({100 * (logd / off - 1):+.1f}%; the issue's bound is +5%).",
        f"- In-process store vs off: {inproc / off:.3f}x; logd vs in-process: "
        f"{logd / inproc:.3f}x.",
        f"- Gateway RSS with logd vs with the in-process store: "
        f"{med('logd', 'gateway_rss_mb'):.0f} MB vs {med('in-process', 'gateway_rss_mb'):.0f} "
        f"MB ({med('logd', 'gateway_rss_mb') / med('in-process', 'gateway_rss_mb'):.2f}x); "
        f"chDB's memory is logd's ({med('logd', 'logd_rss_mb'):.0f} MB).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
