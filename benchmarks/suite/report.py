"""Writing results: a markdown section of benchmarks/RESULTS.md and a latency plot."""

from __future__ import annotations

import datetime as dt
import math
import os
import platform
import re
import statistics
import subprocess
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "RESULTS.md"


def write_section(key: str, text: str, results: Path = RESULTS) -> None:
    """Replace the section between `<!-- key:start -->` and `<!-- key:end -->`, or append it,
    so that each benchmark script owns one section and reruns do not pile up."""
    start, end = f"<!-- {key}:start -->", f"<!-- {key}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    existing = results.read_text() if results.exists() else "# Benchmark results\n"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if pattern.search(existing):
        updated = pattern.sub(lambda _: block, existing)
    else:
        updated = existing.rstrip("\n") + "\n\n" + block + "\n"
    results.write_text(updated)


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(cmd: list[str]) -> str:
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except OSError:
            return f"{cmd[0]} missing"
        text = (out.stdout + out.stderr).strip().splitlines()
        return text[0] if text else cmd[0]

    return (
        f"{os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}; {version(['nginx', '-v'])}; "
        f"{version(['haproxy', '-v'])}; {version(['wrk', '-v'])}"
    )


def median(values: list[float]) -> float:
    clean = [v for v in values if not math.isnan(v)]
    return statistics.median(clean) if clean else float("nan")


def utc_now() -> str:
    return f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"


def plot(rows: list[dict], path: Path) -> None:
    """Two panels: req/s per scenario and p50/p99 latency per scenario, one bar per peer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    scenarios = sorted({r["scenario"] for r in rows}, key=[r["scenario"] for r in rows].index)
    peers = sorted({r["peer"] for r in rows}, key=[r["peer"] for r in rows].index)
    by = {(r["scenario"], r["peer"]): r for r in rows}
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 8), constrained_layout=True)
    width = 0.8 / max(len(peers), 1)
    for i, peer in enumerate(peers):
        xs = [j + i * width for j in range(len(scenarios))]
        rps = [by.get((s, peer), {}).get("rps", 0) for s in scenarios]
        p50 = [by.get((s, peer), {}).get("p50", 0) for s in scenarios]
        p99 = [by.get((s, peer), {}).get("p99", 0) for s in scenarios]
        color = f"C{i}"  # one colour per peer in both panels
        top.bar(xs, rps, width, label=peer, color=color)
        bottom.bar(xs, p99, width, label=f"{peer} p99 (light)", color=color, alpha=0.35)
        bottom.bar(xs, p50, width, label=f"{peer} p50", color=color)
    for ax in (top, bottom):
        ax.set_xticks([j + width * (len(peers) - 1) / 2 for j in range(len(scenarios))])
        ax.set_xticklabels(scenarios)
        ax.legend(fontsize=8, ncol=3)
    top.set_ylabel("requests/s (median)")
    top.set_title("one proxy core; upstream and generator on the other core")
    bottom.set_ylabel("latency ms (median of runs)")
    bottom.set_yscale("log")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
