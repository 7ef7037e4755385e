"""Run the suite and record it.

Layout on a 2-core machine: each proxy (pygate `workers: 1`, nginx `worker_processes 1`,
HAProxy `nbthread 1`) is pinned to core 0; the upstream nginx and the load generator share
core 1. Per scenario all peers run side by side and the runs alternate between them, so slow
drift of the machine spreads over every peer. Medians of the runs are reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
from functools import partial
from pathlib import Path

from benchmarks.suite import cputime, loadgen, procs, report
from benchmarks.suite.peers import haproxy, nginx, pygate, pygate_base
from benchmarks.suite.scenarios import ACCURACY_BURST, ACCURACY_RATE, SCENARIOS, Scenario
from benchmarks.suite.upstream import start_upstream

PEERS = {m.NAME: m for m in (pygate, nginx, haproxy, pygate_base)}
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.suite", description=__doc__)
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated")
    p.add_argument("--peers", default="pygate,nginx,haproxy", help="comma-separated")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    p.add_argument("--accuracy-duration", type=float, default=10.0)
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--no-wrk", action="store_true", help="skip the wrk cross-check")
    p.add_argument(
        "--no-generator-check", action="store_true", help="skip pygate bench vs wrk on nginx"
    )
    p.add_argument("--section", default="suite", help="RESULTS.md section to (re)write")
    p.add_argument(
        "--baseline-python", help="interpreter of another pygate install (peer pygate-base)"
    )
    p.add_argument("--baseline-label", help="what the baseline install is, for the report")
    p.add_argument("--no-write", action="store_true", help="print only")
    args = p.parse_args(argv)
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    args.peers = [s for s in args.peers.split(",") if s]
    for s in args.scenarios:
        if s not in SCENARIOS:
            p.error(f"unknown scenario {s!r}; choose from {', '.join(SCENARIOS)}")
    for s in args.peers:
        if s not in PEERS:
            p.error(f"unknown peer {s!r}; choose from {', '.join(PEERS)}")
    return args


def check_behaviour(base: str, scenario: Scenario, peer: str) -> None:
    """Every peer must do the same thing before its speed means anything."""
    url = base + scenario.path
    got = procs.http_status(url, scenario.headers, scenario.body or None)
    if got != 200:
        raise RuntimeError(f"{peer} {scenario.name}: expected 200 from {url}, got {got}")
    if "apikey" in scenario.headers or "Authorization" in scenario.headers:
        denied = procs.http_status(url, {}, scenario.body or None)
        if denied != 401:
            raise RuntimeError(f"{peer} {scenario.name}: expected 401 without key, got {denied}")


def measured_cpu(pid: int, go) -> tuple[loadgen.Measured, cputime.PerRequest, cputime.PerRequest]:
    """Run the generator `go`; the proxy's CPU per request over its measured window (the
    last `duration_s` seconds before it returned: warm-up requests are not in its count)."""
    with cputime.Sampler(pid) as sampler:
        m = go()
        end = time.monotonic()
    cpu = sampler.window(end - m.duration_s, end)
    logd = sampler.window(end - m.duration_s, end, logd=True)
    return m, cputime.per_request(cpu, m.requests), cputime.per_request(logd, m.requests)


def measure_speed(
    args, scenario: Scenario, bases: dict[str, str], pids: dict[str, int]
) -> list[dict]:
    gens = ["pygate-bench"] if args.no_wrk else ["pygate-bench", "wrk"]
    samples: dict[tuple[str, str], list[loadgen.Measured]] = {}
    cpus: dict[tuple[str, str], list[cputime.PerRequest]] = {}
    logds: dict[tuple[str, str], list[cputime.PerRequest]] = {}
    for base in bases.values():  # warm pools and caches
        loadgen.pygate_bench(base + scenario.path, scenario, 1.0, args.connections, 0)
    for run in range(args.runs):
        order = list(bases) if run % 2 == 0 else list(reversed(bases))
        for peer in order:
            for gen in gens:
                url = bases[peer] + scenario.path
                if gen == "wrk":
                    go = partial(loadgen.wrk, url, scenario, args.duration, args.connections)
                else:
                    go = partial(
                        loadgen.pygate_bench, url, scenario, args.duration, args.connections, 0.5
                    )
                m, cpu, logd = measured_cpu(pids[peer], go)
                samples.setdefault((peer, gen), []).append(m)
                cpus.setdefault((peer, gen), []).append(cpu)
                logds.setdefault((peer, gen), []).append(logd)
                print(
                    f"{scenario.name:11} {peer:8} {gen:12} run {run + 1}: {m.rps:>10,.0f} req/s"
                    f"  p50 {m.p50_ms:.3f} ms  p99 {m.p99_ms:.3f} ms  non-2xx {m.other}"
                    f"  errors {m.errors}  cpu {cpu.total_us:.1f} us/req"
                    f" (usr {cpu.user_us:.1f} sys {cpu.system_us:.1f}; logd {logd.total_us:.1f})",
                    flush=True,
                )
    rows = []
    for (peer, gen), ms in samples.items():
        rows.append(
            {
                "scenario": scenario.name,
                "peer": peer,
                "gen": gen,
                "rps": report.median([m.rps for m in ms]),
                "rps_min": min(m.rps for m in ms),
                "rps_max": max(m.rps for m in ms),
                "p50": report.median([m.p50_ms for m in ms]),
                "p99": report.median([m.p99_ms for m in ms]),
                "non_2xx": sum(m.other for m in ms),
                "errors": sum(m.errors for m in ms),
                "cpu_us": report.median([c.total_us for c in cpus[(peer, gen)]]),
                "cpu_user_us": report.median([c.user_us for c in cpus[(peer, gen)]]),
                "cpu_system_us": report.median([c.system_us for c in cpus[(peer, gen)]]),
                "logd_us": report.median([c.total_us for c in logds[(peer, gen)]]),
            }
        )
    return rows


def measure_accuracy(args, scenario: Scenario, bases: dict[str, str]) -> list[dict]:
    rows = []
    for peer, base in bases.items():
        m = loadgen.pygate_bench(
            base + scenario.path, scenario, args.accuracy_duration, args.connections, 0
        )
        expected = ACCURACY_RATE * m.duration_s + ACCURACY_BURST
        rows.append(
            {
                "peer": peer,
                "admitted": m.ok,
                "refused": m.refused,
                "expected": expected,
                "error_pct": 100 * (m.ok - expected) / expected,
                "offered_rps": m.rps,
                "other": m.other + m.errors,
            }
        )
        print(f"{scenario.name} {peer}: admitted {m.ok} of expected {expected:.0f}", flush=True)
    return rows


def measure_generator(args, upstream: str) -> dict:
    """pygate bench against wrk on the same nginx (pinned alone to the proxy core)."""
    tmp = Path(tempfile.mkdtemp(prefix="pygate-gen-"))
    from benchmarks.suite.upstream import UPSTREAM_SERVER, nginx_command

    port = procs.free_port()
    body = UPSTREAM_SERVER.format(port=port, www=tmp, json='{"ok":true}')
    proc = procs.start(nginx_command(tmp, body), procs.PROXY_CORE, tmp / "stderr.log")
    try:
        url = f"http://127.0.0.1:{port}/"
        procs.wait_http(url)
        get = SCENARIOS["plain"]
        ours, theirs = [], []
        for run in range(args.runs):
            pair = [
                ("pygate", lambda: loadgen.pygate_bench(url, get, args.duration, 50, 0.5)),
                ("wrk", lambda: loadgen.wrk(url, get, args.duration, 50)),
            ]
            for name, go in pair if run % 2 == 0 else reversed(pair):
                (ours if name == "pygate" else theirs).append(go().rps)
        return {
            "pygate": report.median(ours),
            "wrk": report.median(theirs),
            "ratio": report.median(ours) / report.median(theirs),
        }
    finally:
        procs.stop(proc, signal.SIGQUIT)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    pygate_base.PYTHON = args.baseline_python
    for tool in ("nginx", "taskset", "haproxy"):
        if shutil.which(tool) is None and (tool != "haproxy" or "haproxy" in args.peers):
            sys.exit(f"{tool} not found (apt-get install nginx-light haproxy util-linux)")
    if shutil.which("wrk") is None and not args.no_wrk:
        print("wrk not found: no cross-check (apt-get install wrk)", file=sys.stderr)
        args.no_wrk = True
    command = "python -m benchmarks.suite " + " ".join(shlex.quote(a) for a in argv)
    tmp = procs.world_readable_dir(Path(tempfile.mkdtemp(prefix="pygate-suite-")))
    upstream_proc, upstream = start_upstream(tmp / "upstream")
    speed, accuracy, statuses = [], [], {}
    try:
        for name in args.scenarios:
            scenario = SCENARIOS[name]
            running, bases = [], {}
            try:
                peers = [p for p in args.peers if not scenario.only or p in scenario.only]
                for peer in peers:
                    proc, base, status_url = PEERS[peer].start(
                        scenario, upstream, tmp / name / peer
                    )
                    running.append((peer, proc, status_url))
                    check_behaviour(base, scenario, peer)
                    bases[peer] = base
                if scenario.accuracy:
                    accuracy += measure_accuracy(args, scenario, bases)
                else:
                    pids = {peer: proc.pid for peer, proc, _ in running}
                    speed += measure_speed(args, scenario, bases, pids)
                for peer, _, status_url in running:
                    if status_url:
                        with urllib.request.urlopen(status_url, timeout=10) as r:
                            statuses[(name, peer)] = json.load(r)
            finally:
                for peer, proc, _ in running:
                    procs.stop(proc, signal.SIGQUIT if peer == "nginx" else signal.SIGTERM)
        check_generator = not args.no_generator_check and shutil.which("wrk") is not None
        generator = measure_generator(args, upstream) if check_generator else None
    finally:
        procs.stop(upstream_proc, signal.SIGQUIT)
        shutil.rmtree(tmp, ignore_errors=True)

    from benchmarks.suite.render import render

    # The plot is a convenience: without matplotlib the section is still written.
    args.plot = bool(speed) and importlib.util.find_spec("matplotlib") is not None
    if speed and not args.plot:
        print("no latency plot: matplotlib is not installed (pip install matplotlib)")
    text = render(args, command, speed, accuracy, generator, statuses)
    print(text)
    if not args.no_write:
        if args.plot:
            plot = RESULTS_DIR / f"{args.section}.png"
            report.plot([r for r in speed if r["gen"] == "pygate-bench"], plot)
        report.write_section(args.section, text)
        print(f"wrote section {args.section!r} of {report.RESULTS}")
    return 0
