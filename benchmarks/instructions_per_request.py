#!/usr/bin/env python3
"""Instructions per proxied request, pygate against nginx, counted by callgrind (issue 14 item 4).

Wall-clock figures on a shared machine move with whatever else runs; the instructions a proxy
executes per request do not. Each proxy runs under `valgrind --tool=callgrind` (pygate's
gateway process; nginx as one process, `master_process off`), configured as the suite
configures it (benchmarks/suite/peers/), behind the suite's upstream. After a warm-up the
counters are zeroed, `pygate bench -n N` sends exactly N keep-alive requests from the load
core, and callgrind dumps: that is the load's Ir. Then the proxy sits idle for as long as
the load took and dumps again: the idle Ir (timers, the admin loop, log flushes), which is
subtracted. Instructions per request = (load Ir - idle Ir) / N.

pygate runs with `log.daemon.enabled: true` (logd pinned to the load core, outside
callgrind): the store is logd's, as issue 14 measures it; the gateway process's shipper
still runs and is counted.

    python benchmarks/instructions_per_request.py [-n 20000] [--scenarios plain,auth]
        [--proxies pygate,nginx] [--top 15] [--keep DIR]
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402

from benchmarks.suite import procs  # noqa: E402
from benchmarks.suite.peers import nginx, pygate  # noqa: E402
from benchmarks.suite.scenarios import SCENARIOS, Scenario  # noqa: E402
from benchmarks.suite.upstream import nginx_command, start_upstream  # noqa: E402

CALLGRIND = ["valgrind", "--tool=callgrind", "--trace-children=no", "--vgdb=yes"]
# glibc copies and clears blocks above a few KiB with `rep movsb` / `rep stosb`, which
# callgrind counts as one instruction per byte (a 12 KiB memcpy: 12,000 Ir, a few hundred
# cycles on the CPU). With the thresholds out of reach glibc uses its vector loops for every
# size, whose instruction count tracks the work done; both proxies run so.
GLIBC_TUNABLES = ":".join(
    f"glibc.cpu.x86_rep_{op}_threshold=4294967295" for op in ("movsb", "stosb")
)
CONNECTIONS = 4
WARMUP = 500


def _pygate_cmd(scenario: Scenario, upstream: str, workdir: Path) -> tuple[list[str], str]:
    port, admin_port = procs.free_port(), procs.free_port()
    cfg = pygate.config(scenario, upstream, port, admin_port)
    cfg["log"]["daemon"] = {"enabled": True, "cpus": [int(procs.LOAD_CORE)]}
    conf = workdir / "gateway.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    return [sys.executable, "-m", "pygate", "serve", "--config", str(conf)], f"127.0.0.1:{port}"


def _nginx_cmd(scenario: Scenario, upstream: str, workdir: Path) -> tuple[list[str], str]:
    port = procs.free_port()
    cmd = nginx_command(workdir, nginx.http_block(scenario, upstream, port, workdir))
    conf = workdir / "nginx.conf"
    # One process serves: what callgrind counts is the worker's work, nothing forked away.
    conf.write_text(conf.read_text().replace("master_process on;", "master_process off;"))
    return cmd, f"127.0.0.1:{port}"


COMMANDS = {"pygate": _pygate_cmd, "nginx": _nginx_cmd}


def _bench(url: str, scenario: Scenario, n: int) -> dict:
    cmd = [sys.executable, "-m", "pygate", "bench", url, "-n", str(n), "-c", str(CONNECTIONS)]
    cmd += ["--warmup", "0s", "--json", "--no-progress", "-X", scenario.method]
    for k, v in scenario.headers.items():
        cmd += ["-H", f"{k}: {v}"]
    r = procs.run_json(["taskset", "-c", procs.LOAD_CORE, *cmd], timeout=1800)
    ok = sum(v for k, v in r["statuses"].items() if 200 <= int(k) < 300)
    if ok != n or r["requests"] != n:
        raise RuntimeError(f"{url}: {r['requests']} requests, {ok} answered 2xx, expected {n}")
    return r


def _dump(pid: int, out_dir: Path) -> Path:
    """Dump (and zero) the counters; returns the new file."""
    before = set(glob.glob(str(out_dir / "cg.out*")))
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        new = set(glob.glob(str(out_dir / "cg.out*"))) - before
        if new:
            time.sleep(0.5)  # let it finish writing
            return Path(sorted(new)[-1])
        time.sleep(0.2)
    raise RuntimeError(f"callgrind of pid {pid} wrote no dump")


def _total_ir(path: Path) -> int:
    text = path.read_text(errors="replace")
    m = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"{path}: no totals line")
    return int(m.group(1))


def _top(path: Path, count: int, inclusive: bool = True) -> list[tuple[int, str]]:
    flag = "--inclusive=yes" if inclusive else "--inclusive=no"
    out = subprocess.run(
        ["callgrind_annotate", flag, "--threshold=100", str(path)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    rows = []
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(.*)$", line)
        if m and not inclusive and OPEN_FRAMES.search(m.group(2)):
            continue
        if m and "PROGRAM TOTALS" not in line:
            rows.append((int(m.group(1).replace(",", "")), m.group(2).strip()))
    return rows[:count]


# Frames still open when callgrind dumps (the worker thread parked in its runtime, Python's
# main thread in the event loop) are listed with the whole cost below them as their own;
# the own-cost list leaves them out.
OPEN_FRAMES = re.compile(
    r"start_thread|thread_start|call_once|begin_short_backtrace|LocalKey|enter_runtime|"
    r"block_on|run_worker|Vectorcall|uvloop|main|Py_|PyEval|builtin_exec|ld-linux|_PyObject_Call|"
    r"PyObject_Call|method_vectorcall|thread_run|pythread_wrapper|:clone|\?\?\?:0x"
)


def _short(name: str) -> str:
    """`???:fn [lib]` / `file:fn [lib]` -> `fn (lib)`, at most 150 characters."""
    m = re.match(r"(?:.*?:)?(.+?)\s*(?:\[(.*)\])?$", name)
    fn, lib = (m.group(1), m.group(2)) if m else (name, None)
    shown = f"{fn} ({Path(lib).name})" if lib else fn
    return shown[:150]


def measure(proxy: str, scenario: Scenario, upstream: str, work: Path, n: int) -> dict:
    workdir = procs.world_readable_dir(work / f"{proxy}-{scenario.name}")
    cmd, addr = COMMANDS[proxy](scenario, upstream, workdir)
    out_dir = procs.world_readable_dir(workdir / "callgrind")
    cg = [*CALLGRIND, f"--callgrind-out-file={out_dir}/cg.out"]
    env = {**os.environ, "GLIBC_TUNABLES": GLIBC_TUNABLES}
    proc = procs.start([*cg, *cmd], procs.PROXY_CORE, workdir / "proxy.log", cwd=workdir, env=env)
    try:
        url = f"http://{addr}{scenario.path}"
        procs.wait_http(url, timeout=600, headers=scenario.headers, proc=proc)
        _bench(url, scenario, WARMUP)  # pools, caches, valgrind's translations
        pid = _valgrind_pid(proc)
        _dump(pid, out_dir)  # start and warm-up, discarded
        t0 = time.monotonic()
        _bench(url, scenario, n)
        took = time.monotonic() - t0
        load = _dump(pid, out_dir)
        time.sleep(took)
        idle = _dump(pid, out_dir)
        load_ir, idle_ir = _total_ir(load), _total_ir(idle)
        return {
            "proxy": proxy,
            "scenario": scenario.name,
            "n": n,
            "load_ir": load_ir,
            "idle_ir": idle_ir,
            "ir_per_req": (load_ir - idle_ir) / n,
            "seconds": took,
            "dump": load,
        }
    finally:
        procs.stop(proc, signal.SIGQUIT if proxy == "nginx" else signal.SIGTERM, timeout=120)


def _valgrind_pid(proc: subprocess.Popen) -> int:
    """procs.start runs `taskset -c CORE valgrind ...`; taskset execs, so the pid is valgrind's."""
    return proc.pid


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=20000, help="measured requests per proxy")
    p.add_argument("--scenarios", default="plain,auth")
    p.add_argument("--proxies", default="pygate,nginx")
    p.add_argument("--top", type=int, default=15, help="pygate's top inclusive functions")
    p.add_argument("--keep", type=Path, help="keep the callgrind dumps in this directory")
    args = p.parse_args(argv)
    for tool in ("valgrind", "callgrind_control", "callgrind_annotate"):
        if shutil.which(tool) is None:
            p.error(f"{tool} is not installed (Debian: apt-get install valgrind)")
    scenarios = [SCENARIOS[s] for s in args.scenarios.split(",")]
    proxies = args.proxies.split(",")
    if unknown := set(proxies) - set(COMMANDS):
        p.error(f"unknown proxies: {', '.join(sorted(unknown))}")
    work = procs.world_readable_dir(args.keep or Path(tempfile.mkdtemp(prefix="pygate-ipr-")))
    up, upstream = start_upstream(work / "upstream")
    results: dict[tuple[str, str], dict] = {}
    try:
        for scenario in scenarios:
            for proxy in proxies:
                r = measure(proxy, scenario, upstream, work, args.n)
                results[(proxy, scenario.name)] = r
                print(f"{proxy} {scenario.name}: {r['ir_per_req']:,.0f} Ir/req "
                      f"(load {r['load_ir']:,}, idle {r['idle_ir']:,}, {r['seconds']:.1f} s)",
                      flush=True)  # fmt: skip
    finally:
        procs.stop(up, signal.SIGQUIT)
    print()
    print(f"Instructions per request (callgrind, N={args.n}, {CONNECTIONS} keep-alive connections)")
    print()
    print("| scenario | pygate Ir/req | nginx Ir/req | pygate/nginx |")
    print("| --- | ---: | ---: | ---: |")
    for s in scenarios:
        g, x = results.get(("pygate", s.name)), results.get(("nginx", s.name))
        gi = f"{g['ir_per_req']:,.0f}" if g else "-"
        xi = f"{x['ir_per_req']:,.0f}" if x else "-"
        ratio = f"{g['ir_per_req'] / x['ir_per_req']:.2f}" if g and x else "-"
        print(f"| {s.name} | {gi} | {xi} | {ratio} |")
    for s in scenarios:
        g = results.get(("pygate", s.name))
        if not g:
            continue
        print()
        print(f"pygate {s.name}: top {args.top} inclusive (Ir per request, function)")
        for ir, name in _top(g["dump"], args.top):
            print(f"  {ir / args.n:>10,.0f}  {_short(name)}")
        print(f"pygate {s.name}: top {args.top} by own cost (Ir per request, function)")
        for ir, name in _top(g["dump"], args.top, inclusive=False):
            print(f"  {ir / args.n:>10,.0f}  {_short(name)}")
    if args.keep:
        print(f"\ndumps kept under {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
