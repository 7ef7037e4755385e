"""Per-upstream-target families of `GET /metrics`, from the core's lock-free per-worker
counters (`Gateway.upstream_metrics()`, core-rs/src/upstream_metrics.rs):

- `pygate_upstream_responses_total{upstream,target,class}`: answers the target gave, by
  the class of the upstream's own status (a Python response plugin may change what the
  client gets; the route's families have that);
- `pygate_upstream_failures_total{upstream,target,reason}`: attempts that got no answer,
  `reason` one of connect, connect_timeout, tls, timeout (read_timeout), closed (the
  connection ended before the answer's head). A call retried from a dead target to a live
  one counts a failure on the first and an answer on the second;
- `pygate_upstream_latency_seconds{upstream,target}`: histogram of the time from sending
  to the answer's head.

Labels are bounded by the config: upstream names and their `host:port` targets, at most
1024 pairs over the process's life (later ones share `upstream="_other",target="_other"`).
Series survive reloads; a target not tried yet is left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pygate.server.prom_text import STATUS_CLASSES, bucket_bounds, histogram_lines, label

_LATENCY = "pygate_upstream_latency_seconds"


def metric_lines(rows: Sequence[Mapping[str, Any]], bounds_us: Sequence[int]) -> list[str]:
    """Prometheus text lines of the core's per-target rows (histogram bounds in µs)."""
    if not rows:
        return []
    labelled = [(_pair(r), r) for r in rows]
    lines = [
        "# HELP pygate_upstream_responses_total Upstream answers by target and status class.",
        "# TYPE pygate_upstream_responses_total counter",
    ]
    for labels, r in labelled:
        for cls, n in zip(STATUS_CLASSES, r["responses"], strict=True):
            lines.append(f'pygate_upstream_responses_total{{{labels},class="{cls}"}} {n}')
    lines += [
        "# HELP pygate_upstream_failures_total Upstream attempts without an answer, by reason.",
        "# TYPE pygate_upstream_failures_total counter",
    ]
    for labels, r in labelled:
        for reason, n in r["failures"].items():
            lines.append(f'pygate_upstream_failures_total{{{labels},reason="{reason}"}} {n}')
    les = bucket_bounds(bounds_us)
    lines += [
        f"# HELP {_LATENCY} Time from sending to an upstream target to its answer's head.",
        f"# TYPE {_LATENCY} histogram",
    ]
    for labels, r in labelled:
        lines += histogram_lines(_LATENCY, labels, r["latency_us"], les)
    return lines


def _pair(row: Mapping[str, Any]) -> str:
    return f'upstream="{label(row["upstream"])}",target="{label(row["target"])}"'
