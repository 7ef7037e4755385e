#!/usr/bin/env python3
"""A cluster-wide rate limit (`scope: cluster`, on a real redis-server) against the same
route with a local limit, in the same run, alternating (issue 13's performance bullet):
req/s and the gateway's CPU per request (utime + stime of the whole process from /proc,
which other processes on a noisy machine do not move), their ratios cluster/local, Redis's
own CPU per request, and the accuracy of a cluster limit that binds at that rate.

The gateway (1 worker) gets core 0; nginx as upstream, redis-server and wrk share core 1.

    python benchmarks/cluster_limit.py [--rounds 3] [--duration 8] [--connections 32]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite import procs  # noqa: E402
from benchmarks.suite.upstream import start_upstream  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
CAP_RATE = 2000  # req/s of the binding cluster limit (accuracy phase)
CAP_BURST = 200


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def wrk(url: str, seconds: float, connections: int) -> tuple[float, int, int]:
    """(req/s, responses, non-2xx)."""
    cmd = ["taskset", "-c", procs.LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, total, int(non2xx.group(1)) if non2xx else 0


def limit(rate: int, per: str, burst: int, scope: str) -> dict:
    return {"rate-limit": {"rate": rate, "per": per, "burst": burst, "by": "route", "scope": scope}}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--duration", type=float, default=8)
    ap.add_argument("--connections", type=int, default=32)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pygate-cluster-bench-"))
    started = []
    try:
        ups, addr = start_upstream(work / "upstream")
        started.append(ups)
        rport = procs.free_port()
        redis = procs.start(
            ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(work)],
            procs.LOAD_CORE, work / "redis.log",
        )  # fmt: skip
        started.append(redis)
        port, admin = procs.free_port(), procs.free_port()
        never = 10**9  # a limit that never refuses: only its cost is measured
        cfg = {
            "listen": f"127.0.0.1:{port}",
            "workers": 1,
            "admin": {"listen": f"127.0.0.1:{admin}", "auth": "none"},
            "log": {"enabled": False},
            "cluster": {"redis": f"redis://127.0.0.1:{rport}/0"},
            "upstreams": [{"name": "u", "targets": [addr]}],
            "routes": [
                {"name": "local", "paths": ["/local/*"], "upstream": "u",
                 "plugins": limit(never, "1s", never, "local")},
                {"name": "cluster", "paths": ["/cluster/*"], "upstream": "u",
                 "plugins": limit(never, "1s", never, "cluster")},
                {"name": "capped", "paths": ["/capped/*"], "upstream": "u",
                 "plugins": limit(CAP_RATE, "1s", CAP_BURST, "cluster")},
            ],
        }  # fmt: skip
        (work / "gw.yaml").write_text(yaml.safe_dump(cfg))
        gw = procs.start(
            [sys.executable, "-m", "pygate", "serve", "--config", str(work / "gw.yaml")],
            procs.PROXY_CORE,
            work / "gw.log",
        )
        started.append(gw)
        procs.wait_http(f"http://127.0.0.1:{port}/local/x", proc=gw)
        procs.wait_http(f"http://127.0.0.1:{port}/cluster/x", proc=gw)
        wrk(f"http://127.0.0.1:{port}/cluster/x", 2, args.connections)  # warm up both
        wrk(f"http://127.0.0.1:{port}/local/x", 2, args.connections)
        rows: dict[str, list[tuple[float, float, float]]] = {"local": [], "cluster": []}
        for _ in range(args.rounds):
            for name in ("local", "cluster"):
                c0, r0 = cpu_seconds(gw.pid), cpu_seconds(redis.pid)
                rps, total, bad = wrk(f"http://127.0.0.1:{port}/{name}/x", args.duration,
                                      args.connections)  # fmt: skip
                c1, r1 = cpu_seconds(gw.pid), cpu_seconds(redis.pid)
                assert bad == 0, f"{name}: {bad} non-2xx"
                rows[name].append((rps, (c1 - c0) / total * 1e6, (r1 - r0) / total * 1e6))
        # Accuracy where the cluster limit binds: admitted vs burst + rate x time.
        t0 = time.monotonic()
        _, total, refused = wrk(f"http://127.0.0.1:{port}/capped/x", args.duration,
                                args.connections)  # fmt: skip
        elapsed = time.monotonic() - t0
        admitted = total - refused
        expected = CAP_BURST + CAP_RATE * args.duration
        print(f"{'route':8} {'req/s':>9} {'gw CPU us/req':>14} {'redis CPU us/req':>17}")
        for name, runs in rows.items():
            for rps, cpu, rcpu in runs:
                print(f"{name:8} {rps:9.0f} {cpu:14.1f} {rcpu:17.2f}")
        for i, ((lr, lc, _), (cr, cc, _)) in enumerate(
            zip(rows["local"], rows["cluster"], strict=True)
        ):
            print(
                f"round {i + 1}: cluster/local req/s {cr / lr:.3f}, CPU per request {cc / lc:.3f}"
            )
        rps_ratio = sum(r[0] for r in rows["cluster"]) / sum(r[0] for r in rows["local"])
        cpu_ratio = sum(r[1] for r in rows["cluster"]) / sum(r[1] for r in rows["local"])
        print(f"all rounds: cluster/local req/s {rps_ratio:.3f}, CPU per request {cpu_ratio:.3f}")
        print(
            f"accuracy at {total / elapsed:.0f} req/s offered, limit {CAP_RATE}/s burst "
            f"{CAP_BURST}: admitted {admitted} of expected {expected:.0f} "
            f"({(admitted - expected) / expected * 100:+.2f}%) over {args.duration:g}s"
        )
        return 0
    finally:
        for p in reversed(started):
            procs.stop(p)


if __name__ == "__main__":
    sys.exit(main())
