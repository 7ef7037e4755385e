"""`pygate bench URL`: the bundled load generator.

All request work happens in the Rust core (`_core.Bench`); Python only turns options into a
spec, draws the progress bar from the core's counters, and prints the report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from pygate.config.units import Duration
from pygate.core import load_core

PROGRESS_INTERVAL_S = 0.2


def add_bench_parser(commands: argparse._SubParsersAction) -> None:
    bench = commands.add_parser("bench", help="load-test an HTTP endpoint")
    bench.add_argument("url", help="http://host:port/path")
    bench.add_argument("--connections", "-c", type=int, default=50)
    bench.add_argument("--threads", "-t", type=int, default=1)
    length = bench.add_mutually_exclusive_group()
    length.add_argument("--duration", "-d", default="10s", help='e.g. "10s" (default), "1m"')
    length.add_argument("--requests", "-n", type=int, help="stop after N measured requests")
    bench.add_argument(
        "--rate", "-R", type=float, help="open loop at R req/s (latency from intended send time)"
    )
    bench.add_argument("--warmup", default="1s", help="unmeasured warmup (default %(default)s)")
    bench.add_argument("--timeout", default="10s", help="per request (default %(default)s)")
    bench.add_argument("--method", "-X", default="GET")
    bench.add_argument(
        "--header", "-H", action="append", default=[], help="'Name: value' (repeatable)"
    )
    body = bench.add_mutually_exclusive_group()
    body.add_argument("--body", help="request body text")
    body.add_argument("--body-file", type=Path, help="file whose bytes are the request body")
    bench.add_argument("--json", action="store_true", help="print the report as JSON")
    bench.add_argument("--no-progress", action="store_true", help="no live progress bar")
    bench.add_argument(
        "--save",
        metavar="CONFIG",
        help="keep the report in pygate.bench_runs of this gateway config's log store",
    )


class BenchUsageError(ValueError):
    pass


def _ms(option: str, text: str) -> int:
    try:
        return int(Duration.parse(text))
    except ValueError as exc:
        raise BenchUsageError(f"--{option}: {exc}") from None


def build_spec(args: argparse.Namespace) -> tuple[dict, bytes]:
    headers = []
    for raw in args.header:
        name, sep, value = raw.partition(":")
        if not sep or not name.strip():
            raise BenchUsageError(f"--header: expected 'Name: value', got {raw!r}")
        headers.append([name.strip(), value.strip()])
    if args.connections < 1 or args.threads < 1:
        raise BenchUsageError("--connections and --threads must be at least 1")
    if args.requests is not None and args.requests < 1:
        raise BenchUsageError("--requests must be at least 1")
    spec = {
        "url": args.url,
        "connections": args.connections,
        "threads": args.threads,
        "method": args.method,
        "headers": headers,
        "warmup_ms": _ms("warmup", args.warmup),
        "timeout_ms": _ms("timeout", args.timeout),
    }
    if args.requests is not None:
        spec["requests"] = args.requests
    else:
        spec["duration_ms"] = _ms("duration", args.duration)
    if args.rate is not None:
        spec["rate"] = args.rate
    if args.body_file is not None:
        try:
            body = args.body_file.read_bytes()
        except OSError as exc:
            raise BenchUsageError(f"--body-file: {exc}") from None
    else:
        body = (args.body or "").encode()
    return spec, body


def _draw_progress(run, spec: dict, started: float) -> None:
    done, errors, measuring, _ = run.progress()
    elapsed = time.monotonic() - started
    phase = "measuring" if measuring else "warming up"
    if "requests" in spec:
        fraction = done / spec["requests"]
    else:
        total_s = (spec["duration_ms"] + spec["warmup_ms"]) / 1000
        fraction = elapsed / total_s if total_s else 1.0
    fraction = max(0.0, min(1.0, fraction))
    bar = "#" * int(fraction * 30)
    sys.stderr.write(f"\r[{bar:<30}] {fraction:4.0%} {phase}: {done} requests, {errors} errors   ")
    sys.stderr.flush()


def format_report(report: dict) -> str:
    lines = [
        f"{report['mode']}-loop load on {report['url']}",
        f"  {report['connections']} connections, {report['threads']} threads, "
        f"{report['duration_s']:.2f} s measured"
        + (f", target {report['target_rate']:g} req/s" if report["target_rate"] else ""),
        f"  requests: {report['requests']}  ({report['requests_per_s']:,.0f} req/s)",
        f"  bytes read: {report['bytes_read']:,}",
        "  statuses: " + (", ".join(f"{k}: {v}" for k, v in report["statuses"].items()) or "none"),
        "  errors: " + (", ".join(f"{k}: {v}" for k, v in report["errors"].items()) or "none"),
    ]
    latency = report["latency_ms"]
    if latency:
        lines.append("  latency (ms):")
        for name in ("min", "mean", "p50", "p75", "p90", "p99", "p99.9", "p99.99", "max"):
            lines.append(f"    {name:>7}  {latency[name]:10.3f}")
    return "\n".join(lines)


def run_bench(args: argparse.Namespace) -> int:
    try:
        spec, body = build_spec(args)
        run = load_core().Bench(json.dumps(spec), body)
    except (BenchUsageError, ValueError) as exc:
        print(f"pygate bench: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    show_progress = not args.no_progress and sys.stderr.isatty()
    while show_progress and not run.progress()[3]:
        _draw_progress(run, spec, started)
        time.sleep(PROGRESS_INTERVAL_S)
    if show_progress:
        sys.stderr.write("\n")
    try:
        report = json.loads(run.wait())
    except ValueError as exc:
        print(f"pygate bench: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    if args.save:
        from pygate.cli.admin_client import AdminError
        from pygate.cli.commands import save_bench_run
        from pygate.config import ConfigError
        from pygate.logstore import LogStoreError

        try:
            print(f"pygate bench: {save_bench_run(args.save, report)}", file=sys.stderr)
        except ConfigError as exc:
            print("\n".join(exc.lines()), file=sys.stderr)
            return 2
        except (AdminError, LogStoreError) as exc:
            print(f"pygate bench: could not save the run: {exc}", file=sys.stderr)
            return 1
    return 0 if report["requests"] > 0 else 1
