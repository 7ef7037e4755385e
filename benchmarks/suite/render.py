"""The markdown the suite writes into benchmarks/RESULTS.md."""

from __future__ import annotations

from benchmarks.suite.report import machine_line, utc_now
from benchmarks.suite.scenarios import ACCURACY_BURST, ACCURACY_RATE
from benchmarks.suite.scenarios import __doc__ as SCENARIO_DOC


def _speed_table(speed: list[dict]) -> list[str]:
    lines = [
        "| scenario | proxy | generator | req/s | min-max | p50 ms | p99 ms | vs nginx "
        "| CPU us/req | usr / sys | CPU vs nginx | logd us/req | non-2xx | errors |",
        "| --- | --- | --- " + "| ---: " * 11 + "|",
    ]
    nginx = {(r["scenario"], r["gen"]): r for r in speed if r["peer"] == "nginx"}
    for r in speed:
        base = nginx.get((r["scenario"], r["gen"]))
        mine = r["peer"] != "nginx" and base
        ratio = f"{r['rps'] / base['rps']:.2f}" if mine else ""
        cpu_ratio = f"{r['cpu_us'] / base['cpu_us']:.2f}" if mine and base["cpu_us"] else ""
        lines.append(
            f"| {r['scenario']} | {r['peer']} | {r['gen']} | {r['rps']:,.0f} "
            f"| {r['rps_min']:,.0f}-{r['rps_max']:,.0f} | {r['p50']:.3f} | {r['p99']:.3f} "
            f"| {ratio} | {r['cpu_us']:.1f} | {r['cpu_user_us']:.1f} / {r['cpu_system_us']:.1f} "
            f"| {cpu_ratio} | {_logd(r)} | {r['non_2xx']} | {r['errors']} |"
        )
    return lines


def _logd(row: dict) -> str:
    """pygate's log daemon, apart (a log shipper's CPU); blank for peers without one."""
    v = row.get("logd_us")
    return f"{v:.1f}" if v and row["peer"].startswith("pygate") else ""


def _accuracy_table(accuracy: list[dict]) -> list[str]:
    lines = [
        f"Rate limiter accuracy: limit {ACCURACY_RATE} req/s, burst {ACCURACY_BURST}, "
        "one consumer, offered as fast as the generator can (closed loop); expected = "
        "rate x measured seconds + burst.",
        "",
        "| proxy | offered req/s | admitted | expected | error | refused (429) | other |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in accuracy:
        lines.append(
            f"| {r['peer']} | {r['offered_rps']:,.0f} | {r['admitted']:,} "
            f"| {r['expected']:,.0f} | {r['error_pct']:+.2f}% | {r['refused']:,} "
            f"| {r['other']} |"
        )
    if any(r["peer"] == "haproxy" for r in accuracy):
        lines += [
            "",
            "HAProxy's stick-table `http_req_rate` counts every request, refused ones included, "
            "so under a sustained overload it admits only the first period's worth: that is "
            "its semantics, not a measurement error, and not the same limiter as a token "
            "bucket.",
        ]
    return lines


TITLES = {
    "suite": "Suite: pygate, nginx and HAProxy side by side",
    "proxy-vs-nginx": "pygate vs nginx: plain proxy, and key-auth + rate-limit + logging",
    "ab-plugins": "A/B: this build vs the build before Python plugins (routes without them)",
    "plugins": "pygate only: a trivial Python access plugin, and RS256 JWT",
}


def render(args, command, speed, accuracy, generator, statuses) -> str:
    lines = [
        f"## {TITLES.get(args.section, args.section)} ({utc_now()})",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"Machine: {machine_line()}.",
        f"Each proxy pinned alone to core 0 with one worker; upstream nginx and the generator "
        f"on core 1; {args.connections} connections; {args.runs} alternating runs of "
        f"{args.duration:g} s per row, medians shown. `pygate-bench` is the bundled generator "
        "(primary figures); `wrk` is the cross-check. CPU us/req: user + system time of the "
        "proxy's processes (pygate's process; nginx's master and worker) from /proc over the "
        "generator's measured window, divided by the requests it counted (median of the runs); "
        "pygate's log daemon (`pygate logd`, when it runs) is counted apart in logd us/req.",
        "",
    ]
    if getattr(args, "baseline_python", None):
        label = args.baseline_label or args.baseline_python
        lines += [f"`pygate-base` is another install of pygate: {label}.", ""]
    if speed:
        plot = [f"![latency plot](results/{args.section}.png)", ""] if args.plot else []
        lines += _speed_table(speed) + ["", *plot]
    if accuracy:
        lines += _accuracy_table(accuracy) + [""]
    if generator:
        lines += [
            "Generator speed: `pygate bench` vs wrk, each alone against the same nginx pinned "
            f"to core 0 (generator on core 1, 50 connections): pygate bench "
            f"{generator['pygate']:,.0f} req/s, wrk {generator['wrk']:,.0f} req/s, ratio "
            f"**{generator['ratio']:.2f}**.",
            "",
        ]
    dropped = {k: v.get("records_dropped") for k, v in statuses.items()}
    if dropped:
        lines += [
            "pygate call records dropped by the core's buffer per scenario: "
            + ", ".join(f"{s}: {d}" for (s, _), d in dropped.items())
            + ".",
            "",
        ]
    lines += ["Scenarios:", "```", SCENARIO_DOC.strip(), "```"]
    return "\n".join(lines)
