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

from pygate.server.upstream_health import _label

_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")
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
        for cls, n in zip(_CLASSES, r["responses"], strict=True):
            lines.append(f'pygate_upstream_responses_total{{{labels},class="{cls}"}} {n}')
    lines += [
        "# HELP pygate_upstream_failures_total Upstream attempts without an answer, by reason.",
        "# TYPE pygate_upstream_failures_total counter",
    ]
    for labels, r in labelled:
        for reason, n in r["failures"].items():
            lines.append(f'pygate_upstream_failures_total{{{labels},reason="{reason}"}} {n}')
    les = [repr(b / 1_000_000) for b in bounds_us] + ["+Inf"]
    lines += [
        f"# HELP {_LATENCY} Time from sending to an upstream target to its answer's head.",
        f"# TYPE {_LATENCY} histogram",
    ]
    for labels, r in labelled:
        hist = r["latency_us"]
        if len(hist["buckets"]) != len(les):
            raise ValueError("upstream latency bounds and buckets disagree")
        cumulative = 0
        for le, n in zip(les, hist["buckets"], strict=True):
            cumulative += n
            lines.append(f'{_LATENCY}_bucket{{{labels},le="{le}"}} {cumulative}')
        lines.append(f"{_LATENCY}_sum{{{labels}}} {hist['sum'] / 1_000_000!r}")
        lines.append(f"{_LATENCY}_count{{{labels}}} {cumulative}")
    return lines


def _pair(row: Mapping[str, Any]) -> str:
    return f'upstream="{_label(row["upstream"])}",target="{_label(row["target"])}"'
