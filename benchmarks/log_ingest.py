#!/usr/bin/env python3
"""Call-log ingest: logged requests/s into chDB with zero loss, and logging on vs off.

Layout (taskset, 2 cores): the gateway (`workers: 1`, its shipper and chDB inserts
included) on core 0; the upstream (nginx-light, small static file) and the load
generator (`pygate bench`, closed loop) on core 1.

1. End to end, in one run, alternating: the gateway with logging on (records shipped
   to chDB) and off (`log.enabled: false`: the core builds and keeps no call records,
   so nothing is shipped; counters still count). "Zero loss" is checked, not assumed:
   after each logging-on run the gateway is stopped (SIGTERM flushes) and the rows in
   the store are counted against the gateway's own requests_total, with records_dropped == 0.
2. Sink capacity: how many rows/s the shipper's delivery path (RowBinary batches of
   10,000 rows, idempotent insert with a deduplication token, rollup views included)
   pushes into chDB on its own, i.e. the ceiling for a faster gateway or more cores.

Prints a markdown block and writes it as the `log-ingest` section of benchmarks/RESULTS.md.

    python benchmarks/log_ingest.py [--runs 2] [--duration 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import array
import json
import os
import shlex
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Run as `python -m benchmarks.log_ingest` or as a script from the repository root.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite.procs import (  # noqa: E402
    LOAD_CORE,
    PROXY_CORE,
    free_port,
    run_json,
    stop,
    wait_http,
)
from benchmarks.suite.report import write_section  # noqa: E402
from benchmarks.suite.upstream import start_upstream  # noqa: E402

GATEWAY_CONFIG = """\
listen: 127.0.0.1:{port}
workers: 1
admin: {{listen: "127.0.0.1:{admin_port}", auth: none}}
log:
  store: chdb://./data
  flush_interval: {flush_interval}
  batch_size: {batch_size}
  enabled: {enabled}
upstreams: [{{name: app, targets: ["{upstream}"], keepalive: 256}}]
routes: [{{name: api, paths: ["/api/*"], upstream: app}}]
"""
MODES = {"on": "true", "off": "false"}


@dataclass
class Run:
    mode: str
    requests_per_s: float
    p99_ms: float
    requests_total: int  # as the gateway counted them (warmup included)
    rows_stored: int
    records_dropped: int


def admin_status(admin_port: int) -> dict:
    url = f"http://127.0.0.1:{admin_port}/status"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def run_gateway(workdir: Path, mode: str, upstream: str, args: argparse.Namespace) -> Run:
    workdir.mkdir(parents=True)
    port, admin_port = free_port(), free_port()
    config = workdir / "gateway.yaml"
    config.write_text(
        GATEWAY_CONFIG.format(
            port=port,
            admin_port=admin_port,
            upstream=upstream,
            enabled=MODES[mode],
            batch_size=args.batch_size,
            flush_interval=args.flush_interval,
        )
    )
    with open(workdir / "gateway.log", "ab") as log:
        gateway = subprocess.Popen(
            ["taskset", "-c", PROXY_CORE, sys.executable, "-m", "pygate", "serve"]
            + ["--config", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    try:
        wait_http(f"http://127.0.0.1:{admin_port}/status")
        assert wait_http(f"http://127.0.0.1:{port}/api/x") == 200
        report = pygate_bench(f"http://127.0.0.1:{port}/api/x", args.connections, args.duration)
        # Let the shipper catch up before stopping, so the flush at SIGTERM is small.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            status = admin_status(admin_port)
            if status["records_pending"] == 0 and status["log_rows_pending_retry"] == 0:
                break
            time.sleep(0.2)
    finally:
        stop(gateway)
    if gateway.returncode != 0:
        raise RuntimeError(f"gateway exited with {gateway.returncode}; see {workdir}/gateway.log")
    return Run(
        mode=mode,
        requests_per_s=report["requests_per_s"],
        p99_ms=report["latency_ms"]["p99"],
        requests_total=status["requests_total"],
        rows_stored=stored_rows(config),
        records_dropped=status["records_dropped"],
    )


def pygate_bench(url: str, connections: int, duration_s: float) -> dict:
    """`pygate bench` (closed loop) on the load generator's core; its JSON report."""
    cmd = ["taskset", "-c", LOAD_CORE, sys.executable, "-m", "pygate", "bench", url]
    cmd += ["-c", str(connections), "-d", f"{duration_s}s", "--json", "--no-progress"]
    return run_json(cmd, timeout=duration_s + 180)


def stored_rows(config: Path) -> int:
    """Rows in pygate.requests of the gateway's store (read after the gateway stopped)."""
    cmd = [sys.executable, "-m", "pygate", "logs", "query", "--config", str(config)]
    cmd += ["SELECT count() AS n FROM pygate.requests", "--format", "json"]
    return run_json(cmd, timeout=300)[0]["n"]


def synthetic_batch(first_id: int, rows: int) -> tuple[bytes, bytes]:
    """RowBinary rows shaped like the core's (same columns, typical sizes)."""

    def text(value: str) -> bytes:
        raw = value.encode()
        return bytes([len(raw)]) + raw

    now_ms = int(time.time() * 1000)
    data = bytearray()
    ends = array.array("I")
    for i in range(rows):
        data += struct.pack("<q", now_ms + i // 50)
        data += text(f"{first_id + i:032x}") + text(f"route-{i % 20}") + text(f"consumer-{i % 300}")
        data += text("GET") + text("api.example.com") + text(f"/api/items/{i % 5000}")
        data += struct.pack("<Hff", 200 if i % 50 else 503, 1.25 + i % 7, 1.0 + i % 5)
        data += struct.pack("<QQ", 180 + i % 40, 64 + i % 1000)
        data += text(f"10.0.{i % 256}.{i % 199}") + text("127.0.0.1:9001") + text("") + b"\x00"
        ends.append(len(data))
    return bytes(data), ends.tobytes()


def sink_capacity(workdir: Path, total_rows: int) -> float:
    from pygate.logstore import open_store
    from pygate.logstore.batch import Batch
    from pygate.logstore.delivery import deliver

    batch_rows = 10_000
    batches = [
        Batch.new(batch_rows, *synthetic_batch(n * batch_rows, batch_rows))
        for n in range(total_rows // batch_rows)
    ]
    with open_store(f"chdb://{workdir / 'sink'}") as store:
        store.migrate()
        started = time.perf_counter()
        written = sum(deliver(store, batch).rows_written for batch in batches)
        elapsed = time.perf_counter() - started
        stored = int(store.query("SELECT count() FROM pygate.requests", "TSVRaw"))
    if stored != written:
        raise RuntimeError(f"sink capacity run lost rows: wrote {written}, stored {stored}")
    return written / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description="pygate call-log ingest benchmark")
    parser.add_argument("--runs", type=int, default=2, help="runs per mode (on/off)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per load run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--sink-rows", type=int, default=2_000_000)
    parser.add_argument("--batch-size", type=int, default=100_000, help="log.batch_size")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    parser.add_argument("--flush-interval", default="1s", help="log.flush_interval")
    args = parser.parse_args()
    for tool in ("nginx", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install nginx-light util-linux)")

    tmp = Path(tempfile.mkdtemp(prefix="pygate-log-ingest-"))
    os.chmod(tmp, 0o755)
    nginx, upstream = start_upstream(tmp / "upstream")
    runs: list[Run] = []
    try:
        for index in range(args.runs):
            order = ["on", "off"] if index % 2 == 0 else ["off", "on"]
            for mode in order:
                run = run_gateway(tmp / f"{mode}-{index}", mode, upstream, args)
                print(f"  {mode}: {run}", file=sys.stderr)
                runs.append(run)
    finally:
        stop(nginx, sig=3)  # SIGQUIT: nginx's graceful stop
    capacity = sink_capacity(tmp, args.sink_rows)
    text = render(args, runs, capacity)
    print(text)
    if not args.no_write:
        write_section("log-ingest", text)
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if all(r.rows_stored == r.requests_total for r in runs if r.mode == "on") else 1


def render(args: argparse.Namespace, runs: list[Run], capacity: float) -> str:
    def median(mode: str, field: str) -> float:
        return statistics.median(getattr(r, field) for r in runs if r.mode == mode)

    on_rps, off_rps = median("on", "requests_per_s"), median("off", "requests_per_s")
    logged = [r for r in runs if r.mode == "on"]
    lossless = all(r.rows_stored == r.requests_total and r.records_dropped == 0 for r in logged)
    command = "python " + shlex.join(["benchmarks/log_ingest.py", *sys.argv[1:]])
    lines = [
        f"## Call-log ingest into chDB: {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC",
        "",
        f"Command: `{command}`",
        "",
        f"Gateway `workers: 1` on core {PROXY_CORE}; nginx upstream and `pygate bench "
        f"-c {args.connections} -d {args.duration}s` on core {LOAD_CORE}. "
        f"{args.runs} runs per mode, alternating; medians. "
        f"`log.batch_size: {args.batch_size}`, `log.flush_interval: {args.flush_interval}`.",
        "",
        "| logging | req/s | p99 ms | rows stored / requests | core drops |",
        "| --- | ---: | ---: | --- | ---: |",
    ]
    for mode in ("on", "off"):
        mine = [r for r in runs if r.mode == mode]
        stored = ", ".join(f"{r.rows_stored:,} / {r.requests_total:,}" for r in mine)
        drops = ", ".join(f"{r.records_dropped:,}" for r in mine)
        lines.append(
            f"| {mode} | {median(mode, 'requests_per_s'):,.0f} | {median(mode, 'p99_ms'):.2f} "
            f"| {stored if mode == 'on' else '(not shipped)'} | {drops} |"
        )
    lines += [
        "",
        f"- Logged requests/s sustained with zero loss: **{on_rps:,.0f}** "
        f"({'every request is a row' if lossless else 'LOSS: rows != requests'}).",
        f"- Cost of logging: {100 * (1 - on_rps / off_rps):.1f}% of proxied throughput "
        f"(on {on_rps:,.0f} vs off {off_rps:,.0f} req/s).",
        f"- Sink capacity (delivery path alone, 10,000-row RowBinary batches with dedup "
        f"tokens, rollup views on): **{capacity:,.0f} rows/s** into chDB, one thread.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
