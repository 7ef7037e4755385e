#!/usr/bin/env python3
"""Instructions the gateway process executes per proxied request, counted by callgrind
(deterministic: the machine's load does not move it). The gateway (1 worker, no call
log) runs under `valgrind --tool=callgrind`; after start-up the counters are zeroed, N
requests are sent over one keep-alive connection, and the count is dumped; then the same
wall time passes idle and is dumped again. (load Ir - idle Ir) / N is the figure: the idle
part takes out what the process does with no traffic (timers, the admin listener's loop).

    python benchmarks/callgrind_per_request.py [-n 2000] [--tracing]
"""

from __future__ import annotations

import argparse
import http.client
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


def control(pid: int, *flags: str) -> None:
    subprocess.run(["callgrind_control", *flags, str(pid)], check=True, capture_output=True)


def total_ir(files: set[Path], out: Path) -> tuple[int, set[Path]]:
    """Ir of the dump files written since `files` (one per dump without thread split)."""
    new = set(out.parent.glob(out.name + "*")) - files
    ir = 0
    for f in new:
        m = re.search(r"^(?:summary|totals): (\d+)", f.read_text(), re.M)
        ir += int(m.group(1)) if m else 0
    return ir, files | new


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--tracing", action="store_true", help="configure tracing (no exporter)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="pygate-callgrind-"))
    ups, addr = start_upstream(work / "upstream")
    port = procs.free_port()
    cfg = {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "admin": {"listen": f"127.0.0.1:{procs.free_port()}", "auth": "none"},
        "log": {"enabled": False},
        "upstreams": [{"name": "u", "targets": [addr]}],
        "routes": [{"name": "r", "paths": ["/r/*"], "upstream": "u"}],
    }
    if args.tracing:
        cfg["tracing"] = {"sample_ratio": 1.0}
    (work / "gw.yaml").write_text(yaml.safe_dump(cfg))
    out = work / "callgrind.out"
    cmd = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}",
           sys.executable, "-m", "pygate", "serve", "--config", str(work / "gw.yaml")]  # fmt: skip
    gw = procs.start(cmd, procs.PROXY_CORE, work / "gw.log")
    try:
        procs.wait_http(f"http://127.0.0.1:{port}/r/x", timeout=600, proc=gw)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        for _ in range(50):  # warm up (pools, caches) before counting
            conn.request("GET", "/r/x")
            conn.getresponse().read()
        control(gw.pid, "-i", "on")
        control(gw.pid, "-z")
        files: set[Path] = set()
        t0 = time.monotonic()
        for _ in range(args.n):
            conn.request("GET", "/r/x")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
        elapsed = time.monotonic() - t0
        control(gw.pid, "-d")
        load, files = total_ir(files, out)
        control(gw.pid, "-z")
        time.sleep(elapsed)
        control(gw.pid, "-d")
        idle, files = total_ir(files, out)
        conn.close()
        per = (load - idle) / args.n
        print(f"requests {args.n} in {elapsed:.1f}s; Ir load {load} idle {idle}; "
              f"per request {per:.0f}")  # fmt: skip
        return 0
    finally:
        procs.stop(gw)
        procs.stop(ups)


if __name__ == "__main__":
    sys.exit(main())
