"""The load generators: pygate's own (`pygate bench`, the primary) and wrk (cross-check)."""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from benchmarks.suite.procs import LOAD_CORE, run_json
from benchmarks.suite.scenarios import Scenario


@dataclass
class Measured:
    rps: float
    p50_ms: float
    p99_ms: float
    ok: int  # 2xx responses
    refused: int  # 429 responses
    other: int  # any other status
    errors: int  # transport failures
    duration_s: float
    requests: int = 0  # answered in the measured window (any status)


def pygate_bench(
    url: str, scenario: Scenario, seconds: float, connections: int, warmup_s: float
) -> Measured:
    with tempfile.NamedTemporaryFile(suffix=".body") as body:
        body.write(scenario.body)
        body.flush()
        cmd = [
            "taskset", "-c", LOAD_CORE, sys.executable, "-m", "pygate", "bench", url,
            "-c", str(connections), "-d", f"{seconds}s", "--warmup", f"{warmup_s}s",
            "-X", scenario.method, "--json", "--no-progress",
        ]  # fmt: skip
        for k, v in scenario.headers.items():
            cmd += ["-H", f"{k}: {v}"]
        if scenario.body:
            cmd += ["--body-file", body.name]
        # Exit 1 is a finished run that got no responses: its report still says why.
        r = run_json(cmd, timeout=seconds + 180, ok_returncodes=(0, 1))
    statuses = {int(k): v for k, v in r["statuses"].items()}
    ok = sum(v for k, v in statuses.items() if 200 <= k < 300)
    refused = statuses.get(429, 0)
    return Measured(
        rps=r["requests_per_s"],
        p50_ms=r["latency_ms"].get("p50", float("nan")),
        p99_ms=r["latency_ms"].get("p99", float("nan")),
        ok=ok,
        refused=refused,
        other=r["requests"] - ok - refused,
        errors=sum(r["errors"].values()),
        duration_s=r["duration_s"],
        requests=r["requests"],
    )


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str, seconds: float) -> Measured:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    pct = {
        m.group(1): float(m.group(2)) * UNIT_MS[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    other = int(non_2xx.group(1)) if non_2xx else 0
    return Measured(
        rps=rps,
        p50_ms=pct.get("50", float("nan")),
        p99_ms=pct.get("99", float("nan")),
        ok=total - other,
        refused=0,
        other=other,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        duration_s=seconds,
        requests=total,
    )


def wrk(url: str, scenario: Scenario, seconds: float, connections: int) -> Measured:
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s"]
    cmd += ["--latency", "--timeout", "10s"]
    for k, v in scenario.headers.items():
        cmd += ["-H", f"{k}: {v}"]
    with tempfile.TemporaryDirectory() as tmp:
        if scenario.method != "GET" or scenario.body:
            script = Path(tmp) / "request.lua"
            script.write_text(
                f'wrk.method = "{scenario.method}"\n'
                f'wrk.body = string.rep("x", {len(scenario.body)})\n'
                'wrk.headers["Content-Type"] = "application/octet-stream"\n'
            )
            cmd += ["-s", str(script)]
        out = subprocess.run(
            [*cmd, url], capture_output=True, text=True, check=True, timeout=seconds + 120
        ).stdout
    return parse_wrk(out, seconds)
