"""Pieces of the Prometheus text format shared by the /metrics families (metrics.py,
upstream_health.py, upstream_metrics.py): label escaping, status classes, histograms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

STATUS_CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


def label(value: str) -> str:
    """A label value escaped as the text format wants it (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def seconds(us: int) -> str:
    return repr(us / 1_000_000)


def bucket_bounds(bounds_us: Sequence[int]) -> list[str]:
    """The `le` values of a histogram whose bounds the core gives in microseconds."""
    return [seconds(b) for b in bounds_us] + ["+Inf"]


def histogram_lines(
    name: str, labels: str, hist: Mapping[str, Any], les: Sequence[str]
) -> list[str]:
    """One series of a histogram from the core's per-bucket counts (not cumulative) and
    its sum in microseconds; `labels` is the series' other labels, already escaped."""
    if len(hist["buckets"]) != len(les):
        raise ValueError(f"{name}: histogram bounds and buckets disagree")
    lines = []
    cumulative = 0
    for le, n in zip(les, hist["buckets"], strict=True):
        cumulative += n
        lines.append(f'{name}_bucket{{{labels},le="{le}"}} {cumulative}')
    lines.append(f"{name}_sum{{{labels}}} {seconds(hist['sum'])}")
    lines.append(f"{name}_count{{{labels}}} {cumulative}")
    return lines
