#!/usr/bin/env python3
"""AI gateway vs calling the provider directly vs LiteLLM's proxy, same mock, one core.

    python benchmarks/ai_vs_litellm.py [--duration 10] [--rate 200] [--connections 32]
                                       [--skip-litellm]

Pinning (2-core machine): the proxy under test (pygate with `workers: 1`, or the LiteLLM
proxy with one worker) runs alone on core 0, one at a time; the mock provider
(benchmarks/ai_mock.py), the load generator (`pygate bench`) and this script share
core 1. For each target:
- p50 latency of non-streamed chat completions one at a time (one connection, closed
  loop): the time the gateway adds to a call, with no queueing anywhere;
- p50/p99 latency at a fixed open-loop rate (--rate, 8 connections), below saturation.
  The generator's timer has a 1 ms grain and latency counts from the intended send time,
  so these include up to 1 ms of pacing for every target (the direct call too), and the
  wakeups of idle threads between calls;
- req/s in a closed loop with --connections connections (saturation);
- time to first token (TTFT) of streamed calls, sequential, p50 over --ttft-calls.
The issue's targets: overhead <= 0.5 ms p50, req/s >= 10x LiteLLM's, TTFT within 1 ms.
LiteLLM is PyPI `litellm[proxy]` (`litellm` on PATH); pygate logs every call (chDB).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks.suite import report  # noqa: E402
from benchmarks.suite.procs import run_json  # noqa: E402

HERE = Path(__file__).resolve().parent
KEY = "bench-key"
BODY = {"model": "bench", "messages": [{"role": "user", "content": "Say hello to the benchmark."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:4]} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"port {port} did not open")


def start(args: list[str], core: int, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    with open(log, "ab") as out:
        return subprocess.Popen(
            ["taskset", "-c", str(core), *args], stdout=out, stderr=subprocess.STDOUT, cwd=cwd
        )


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def bench(url: str, body_file: Path, seconds: int, *extra: str) -> dict:
    """`pygate bench` on this script's core; its JSON report."""
    command = [sys.executable, "-m", "pygate", "bench", url, "-X", "POST",
               "--body-file", str(body_file), "-H", "Content-Type: application/json",
               "-H", f"Authorization: Bearer {KEY}", "-d", f"{seconds}s", "--warmup", "1s",
               "--json", "--no-progress", *extra]  # fmt: skip
    return run_json(command, timeout=seconds + 120)


async def ttft(url: str, calls: int) -> float:
    """p50 milliseconds from sending a streamed request to its first content chunk."""
    import aiohttp

    body = {**BODY, "stream": True}
    headers = {"Authorization": f"Bearer {KEY}"}
    samples = []
    async with aiohttp.ClientSession() as session:
        for n in range(calls + 20):  # the first 20 warm the connections up
            started = time.perf_counter()
            async with session.post(url, json=body, headers=headers) as response:
                async for line in response.content:
                    if line.startswith(b"data: {") and b'"content"' in line:
                        if n >= 20:
                            samples.append((time.perf_counter() - started) * 1000)
                        break
                await response.read()
    return statistics.median(samples)


def measure(name: str, url: str, body_file: Path, opts: argparse.Namespace) -> dict:
    alone = bench(url, body_file, opts.duration, "-c", "1")
    paced = bench(url, body_file, opts.duration, "-c", "8", "--rate", str(opts.rate))
    loaded = bench(url, body_file, opts.duration, "-c", str(opts.connections))
    ok = loaded.get("statuses", {}).get("200", 0)
    result = {
        "target": name,
        "alone_p50_ms": alone["latency_ms"]["p50"],
        "p50_ms": paced["latency_ms"]["p50"],
        "p99_ms": paced["latency_ms"]["p99"],
        "req_s": loaded["requests_per_s"],
        "non_200": loaded["requests"] - ok,
        "ttft_p50_ms": asyncio.run(ttft(url, opts.ttft_calls)),
    }
    print(json.dumps(result), flush=True)
    return result


def pygate_config(work: Path, port: int, mock_port: int) -> Path:
    config = {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "log": {"store": "chdb://./data"},
        "consumers": [{"name": "bench", "keys": [KEY]}],
        "ai": {
            "providers": [{"name": "mock", "kind": "openai",
                           "base_url": f"http://127.0.0.1:{mock_port}", "keys": ["mock-key"]}],
            "models": [{"name": "bench", "deployments": [{"model": "mock/m"}]}],
            "prices": [{"model": "mock/m", "input_per_1m": 0.15, "output_per_1m": 0.6}],
        },
    }  # fmt: skip
    path = work / "pygate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def litellm_config(work: Path, mock_port: int) -> Path:
    config = {
        "model_list": [{"model_name": "bench", "litellm_params": {
            "model": "openai/m", "api_base": f"http://127.0.0.1:{mock_port}/v1",
            "api_key": "mock-key"}}],
        "general_settings": {"master_key": KEY},
    }  # fmt: skip
    path = work / "litellm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rate", type=int, default=200, help="req/s for the latency run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--ttft-calls", type=int, default=200)
    parser.add_argument("--skip-litellm", action="store_true")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    opts = parser.parse_args(argv)
    if os.cpu_count() and os.cpu_count() >= 2:
        os.sched_setaffinity(0, {1})  # this script, the mock and the generator: core 1
    work = Path(tempfile.mkdtemp(prefix="pygate-ai-bench-"))
    body_file = work / "body.json"
    body_file.write_text(json.dumps(BODY))
    mock_port = free_port()
    mock = start([sys.executable, str(HERE / "ai_mock.py"), str(mock_port)], 1, work / "mock.log")
    results = []
    try:
        wait_port(mock_port, mock)
        direct = f"http://127.0.0.1:{mock_port}/v1/chat/completions"
        results.append(measure("direct", direct, body_file, opts))

        port = free_port()
        config = pygate_config(work, port, mock_port)
        serve = [sys.executable, "-m", "pygate", "serve", "--config", str(config)]
        gateway = start(serve, 0, work / "pygate.log")
        try:
            wait_port(port, gateway)
            url = f"http://127.0.0.1:{port}/v1/chat/completions"
            results.append(measure("pygate", url, body_file, opts))
        finally:
            stop(gateway)

        if not opts.skip_litellm:
            if shutil.which("litellm") is None:
                print("litellm not found: pip install 'litellm[proxy]' (or --skip-litellm)")
                return 1
            port = free_port()
            proxy = start(["litellm", "--config", str(litellm_config(work, mock_port)),
                           "--host", "127.0.0.1", "--port", str(port), "--num_workers", "1"],
                          0, work / "litellm.log")  # fmt: skip
            try:
                wait_port(port, proxy, timeout=300)
                url = f"http://127.0.0.1:{port}/v1/chat/completions"
                results.append(measure("litellm", url, body_file, opts))
            finally:
                stop(proxy)
    finally:
        stop(mock)
    text = render(results, "python benchmarks/ai_vs_litellm.py " + " ".join(argv or []), opts)
    print(text)
    if not opts.no_write:
        report.write_section("ai-vs-litellm", text)
    return 0


def render(results: list[dict], command: str, opts: argparse.Namespace) -> str:
    by = {r["target"]: r for r in results}
    lines = [
        f"## AI gateway vs direct vs LiteLLM ({report.utc_now()})",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {report.machine_line()}. The proxy under test alone on core 0 (pygate "
        "`workers: 1`, logging every call to chDB; LiteLLM proxy `--num_workers 1`); the "
        "mock provider, `pygate bench` and this script on core 1. Non-streamed chat "
        f"completions; {opts.duration} s per measurement.",
        "",
        "| target | p50 ms, one at a time | p50 ms at "
        f"{opts.rate} req/s | p99 ms at {opts.rate} req/s | req/s, {opts.connections} "
        "connections | non-200 | TTFT p50 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r['target']} | {r['alone_p50_ms']:.3f} | {r['p50_ms']:.3f} "
            f"| {r['p99_ms']:.3f} | {r['req_s']:,.0f} | {r['non_200']} | {r['ttft_p50_ms']:.3f} |"
        )
    lines.append("")
    if "pygate" in by:
        pg, direct = by["pygate"], by["direct"]
        alone = pg["alone_p50_ms"] - direct["alone_p50_ms"]
        paced = pg["p50_ms"] - direct["p50_ms"]
        ttft_delta = pg["ttft_p50_ms"] - direct["ttft_p50_ms"]
        lines += [
            f"- Added p50 latency, one call at a time: **{alone:.3f} ms** (target <= 0.5).",
            f"- Added p50 latency at {opts.rate} req/s open loop: {paced:.3f} ms (between "
            "calls the gateway's threads sleep; each call wakes the core's worker and the "
            "AI app's loop, twice).",
            f"- Time to first token vs direct: **+{ttft_delta:.3f} ms** (target <= 1).",
        ]
    if "pygate" in by and "litellm" in by:
        ratio = by["pygate"]["req_s"] / max(by["litellm"]["req_s"], 1e-9)
        lines.append(f"- pygate / LiteLLM req/s: **{ratio:.1f}x** (target >= 10).")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
