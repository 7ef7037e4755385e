#!/usr/bin/env python3
"""What OTLP export at 100% sampling costs (issue 13's performance bullet): the same route
on two gateways of the same build, one without `tracing`, one exporting every call's span
over OTLP/HTTP to a real receiver on loopback (tests/support/otlp_receiver.py's, keeping a
count instead of the spans), in alternating runs of one invocation. Reported: req/s and
the gateway's CPU per request (utime + stime of its process tree from /proc,
benchmarks/suite/cputime.py), the traced/off ratios per round and their medians, and the
exporter's counters at the end (exported, dropped, failed exports, still queued) against
the spans the receiver decoded and the calls the traced gateway answered.

Each gateway (1 worker) gets core 0 in turn (only one is under load at a time); nginx as
the upstream, wrk, the receiver and this script share core 1.

    python benchmarks/otlp_cost.py [--rounds 5] [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import yaml
from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.otlp_receiver import OtlpReceiver  # noqa: E402

from benchmarks.suite import cputime, procs  # noqa: E402
from benchmarks.suite.upstream import start_upstream  # noqa: E402


class CountingReceiver(OtlpReceiver):
    """Decodes every export like the test receiver, but only counts its spans (a long
    run would otherwise keep hundreds of thousands of them)."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self.batches = 0
        self._counted = threading.Lock()

    async def _export(self, request: web.Request) -> web.Response:
        message = ExportTraceServiceRequest()
        message.ParseFromString(await request.read())
        n = sum(len(ss.spans) for rs in message.resource_spans for ss in rs.scope_spans)
        with self._counted:
            self.count += n
            self.batches += 1
        return web.Response(
            body=ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )


def wrk(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    """(req/s, responses, non-2xx)."""
    cmd = ["taskset", "-c", procs.LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, total, int(non2xx.group(1)) if non2xx else 0


def status(admin: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/status", timeout=10) as resp:
        return json.loads(resp.read())


def start_gateway(work: Path, name: str, upstream: str, tracing: dict | None):
    port, admin = procs.free_port(), procs.free_port()
    cfg = {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "admin": {"listen": f"127.0.0.1:{admin}", "auth": "none"},
        "log": {"enabled": False},
        "upstreams": [{"name": "u", "targets": [upstream]}],
        "routes": [{"name": "r", "paths": ["/r/*"], "upstream": "u"}],
    }
    if tracing is not None:
        cfg["tracing"] = tracing
    # Each in its own directory: the admin state and store live beside the config.
    (work / name).mkdir()
    path = work / name / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    gw = procs.start(
        [sys.executable, "-m", "pygate", "serve", "--config", str(path)],
        procs.PROXY_CORE,
        work / f"{name}.log",
    )
    procs.wait_http(f"http://127.0.0.1:{port}/r/x", proc=gw)
    return gw, port, admin


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    # This script and the receiver thread live on the load core, off the gateway's.
    os.sched_setaffinity(0, {int(procs.LOAD_CORE)})
    work = Path(tempfile.mkdtemp(prefix="pygate-otlp-bench-"))
    started = []
    receiver = CountingReceiver().start()
    load_before = loadavg()
    try:
        ups, addr = start_upstream(work / "upstream")
        started.append(ups)
        tracing = {
            "sample_ratio": 1.0,
            "parent_based": False,
            "otlp": {"endpoint": receiver.endpoint, "protocol": "http"},
        }
        gateways = {}
        for name, t in (("off", None), ("otlp", tracing)):
            gw, port, admin = start_gateway(work, name, addr, t)
            started.append(gw)
            gateways[name] = (gw, port, admin)
        for _, port, _ in gateways.values():
            wrk(f"http://127.0.0.1:{port}/r/x", 2, args.connections)  # warm up
        rows: dict[str, list[tuple[float, float]]] = {"off": [], "otlp": []}
        for i in range(args.rounds):
            order = ("off", "otlp") if i % 2 == 0 else ("otlp", "off")
            for name in order:
                gw, port, _ = gateways[name]
                pids = cputime.tree(gw.pid)
                c0 = cputime.cpu_of(pids)
                rps, total, bad = wrk(f"http://127.0.0.1:{port}/r/x", args.duration,
                                      args.connections)  # fmt: skip
                c1 = cputime.cpu_of(pids)
                if bad:
                    raise RuntimeError(f"{name}: {bad} non-2xx responses")
                rows[name].append((rps, (c1.total_s - c0.total_s) / total * 1e6))
        load_after = loadavg()

        # Let the exporter drain, then compare its counters with what arrived.
        _, _, admin = gateways["otlp"]
        deadline = time.monotonic() + 30
        while True:
            s = status(admin)
            # Calls finished (a call whose client left before its answer, as wrk's do
            # when a run ends, never finishes: it has no span, and no response counted).
            finished = sum(s[f"responses_{c}xx"] for c in range(1, 6))
            done = s["tracing_spans_exported_total"] + s["tracing_spans_dropped_total"]
            if done >= finished or time.monotonic() > deadline:
                break
            time.sleep(0.5)

        print(f"load average before {load_before}, after {load_after}")
        print(f"{'round':>5} {'off req/s':>10} {'otlp req/s':>11} {'req/s ratio':>12} "
              f"{'off us/req':>11} {'otlp us/req':>12} {'CPU ratio':>10}")  # fmt: skip
        rps_ratios, cpu_ratios = [], []
        for i, ((orps, ocpu), (trps, tcpu)) in enumerate(
            zip(rows["off"], rows["otlp"], strict=True)
        ):
            rps_ratios.append(trps / orps)
            cpu_ratios.append(tcpu / ocpu)
            print(f"{i + 1:>5} {orps:10.0f} {trps:11.0f} {trps / orps:12.3f} "
                  f"{ocpu:11.1f} {tcpu:12.1f} {tcpu / ocpu:10.3f}")  # fmt: skip
        print(
            f"median otlp/off: req/s {statistics.median(rps_ratios):.3f}, "
            f"CPU per request {statistics.median(cpu_ratios):.3f}"
        )
        print(
            f"exporter: calls received {s['requests_total']}, finished {finished}, "
            f"spans exported {s['tracing_spans_exported_total']}, "
            f"dropped {s['tracing_spans_dropped_total']}, "
            f"failed exports {s['tracing_export_failures_total']}, "
            f"not yet exported {finished - done}; "
            f"receiver decoded {receiver.count} spans in {receiver.batches} batches"
        )
        return 0
    finally:
        for p in reversed(started):
            procs.stop(p)
        receiver.stop()


if __name__ == "__main__":
    sys.exit(main())
