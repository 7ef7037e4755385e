#!/usr/bin/env python3
"""System calls per request, pygate against nginx, in the suite's `auth` scenario (key-auth +
rate-limit + call log): `strace -c -f` attached to every process of each proxy while
`pygate bench -n N -c 50` runs (issue 14 item 4). strace slows both proxies down: read the
counts, not the times.

    python benchmarks/syscalls_per_request.py [-n 5000]
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.suite import cputime, loadgen, procs  # noqa: E402
from benchmarks.suite.peers import nginx, pygate  # noqa: E402
from benchmarks.suite.scenarios import SCENARIOS  # noqa: E402
from benchmarks.suite.upstream import start_upstream  # noqa: E402


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("-n", type=int, default=5000, help="requests per proxy")
    args = p.parse_args(argv)
    scenario = SCENARIOS["auth"]
    tmp = procs.world_readable_dir(Path(tempfile.mkdtemp(prefix="pygate-syscalls-")))
    up, upstream = start_upstream(tmp / "upstream")
    running = []
    try:
        for name, peer in (("pygate", pygate), ("nginx", nginx)):
            proc, base, _ = peer.start(scenario, upstream, procs.world_readable_dir(tmp / name))
            running.append((proc, signal.SIGQUIT if name == "nginx" else signal.SIGTERM))
            url = base + scenario.path
            loadgen.pygate_bench(url, scenario, 1.0, 50, 0)  # warm pools
            out = tmp / f"{name}.strace"
            attach = [a for pid in cputime.tree(proc.pid) for a in ("-p", str(pid))]
            tracer = subprocess.Popen(["strace", "-c", "-f", "-o", str(out), *attach])
            time.sleep(1.0)  # strace attached to every thread
            cmd = [sys.executable, "-m", "pygate", "bench", url, "-n", str(args.n), "-c", "50"]
            cmd += ["--warmup", "0s", "--json", "--no-progress"]
            for k, v in scenario.headers.items():
                cmd += ["-H", f"{k}: {v}"]
            subprocess.run(["taskset", "-c", procs.LOAD_CORE, *cmd], check=True, timeout=600,
                           capture_output=True)  # fmt: skip
            time.sleep(0.5)
            tracer.send_signal(signal.SIGINT)
            tracer.wait(30)
            print(f"== {name}: system calls over {args.n} requests (strace -c -f)")
            print(out.read_text())
    finally:
        for proc, sig in running:
            procs.stop(proc, sig)
        procs.stop(up, signal.SIGQUIT)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
