"""`GET /metrics` on the admin listener: the /status counters as Prometheus text.

The same numbers as `pygate status`, renamed to Prometheus conventions (`_total` for
counters, base units). Keys without an entry below are still exported, as untyped
`pygate_<key>` samples, so a counter added to the core shows up without a release
of this file. Non-numeric status fields (config_file, last error) are left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# status key -> (metric name, type, help, labels)
_METRICS: dict[str, tuple[str, str, str, str]] = {
    "requests_total": ("pygate_requests_total", "counter", "Requests answered.", ""),
    "responses_1xx": (
        "pygate_responses_total",
        "counter",
        "Responses by status class.",
        'class="1xx"',
    ),
    "responses_2xx": (
        "pygate_responses_total",
        "counter",
        "Responses by status class.",
        'class="2xx"',
    ),
    "responses_3xx": (
        "pygate_responses_total",
        "counter",
        "Responses by status class.",
        'class="3xx"',
    ),
    "responses_4xx": (
        "pygate_responses_total",
        "counter",
        "Responses by status class.",
        'class="4xx"',
    ),
    "responses_5xx": (
        "pygate_responses_total",
        "counter",
        "Responses by status class.",
        'class="5xx"',
    ),
    "rate_limited_total": (
        "pygate_rate_limited_total",
        "counter",
        "Requests refused by rate limiting.",
        "",
    ),
    "upstream_errors_total": (
        "pygate_upstream_errors_total",
        "counter",
        "Upstream connect/read failures.",
        "",
    ),
    "auth_failures_total": (
        "pygate_auth_failures_total",
        "counter",
        "Failed key-auth, basic-auth and jwt authentications (401).",
        "",
    ),
    "auth_blocked_total": (
        "pygate_auth_blocked_total",
        "counter",
        "Calls refused (429) because their address failed to authenticate too often.",
        "",
    ),
    "connections_active": ("pygate_connections_active", "gauge", "Open client connections.", ""),
    "reloads_total": ("pygate_reloads_total", "counter", "Config reloads applied.", ""),
    "reloads_refused": ("pygate_reloads_refused_total", "counter", "Config reloads refused.", ""),
    "uptime_s": ("pygate_uptime_seconds", "gauge", "Seconds since the gateway started.", ""),
    "records_pending": (
        "pygate_log_records_buffered",
        "gauge",
        "Call records waiting in the core's buffer.",
        "",
    ),
    "records_dropped": (
        "pygate_log_records_dropped_by_core_total",
        "counter",
        "Call records the core dropped: its buffer was full.",
        "",
    ),
    "log_rows_written": (
        "pygate_log_rows_written_total",
        "counter",
        "Call records the store accepted (replays included).",
        "",
    ),
    "log_rows_replayed": (
        "pygate_log_rows_replayed_total",
        "counter",
        "Call records written from the disk spool.",
        "",
    ),
    "log_rows_spooled": (
        "pygate_log_rows_spooled_total",
        "counter",
        "Call records written to the disk spool.",
        "",
    ),
    "log_rows_quarantined": (
        "pygate_log_rows_quarantined_total",
        "counter",
        "Call records the store refused, kept in the dead-letter file.",
        "",
    ),
    "log_rows_discarded": (
        "pygate_log_rows_discarded_total",
        "counter",
        "Call records lost by the shipper (spool full at shutdown).",
        "",
    ),
    "log_rows_dropped": (
        "pygate_log_rows_dropped_total",
        "counter",
        "Call records lost: core buffer drops plus shipper discards.",
        "",
    ),
    "log_rows_pending_retry": (
        "pygate_log_rows_pending_retry",
        "gauge",
        "Call records waiting for the store (spool and memory).",
        "",
    ),
    "log_spool_rows": ("pygate_log_spool_rows", "gauge", "Call records in the disk spool.", ""),
    "log_spool_bytes": ("pygate_log_spool_bytes", "gauge", "Size of the disk spool.", ""),
    "log_spool_batches": ("pygate_log_spool_batches", "gauge", "Batches in the disk spool.", ""),
    "log_batches_written": (
        "pygate_log_batches_written_total",
        "counter",
        "Batches the store accepted.",
        "",
    ),
    "log_batches_failed": (
        "pygate_log_batches_failed_total",
        "counter",
        "Inserts that found the store unavailable.",
        "",
    ),
    "ai_provider_auth_failures": (
        "pygate_ai_provider_auth_failures_total",
        "counter",
        "Provider answers that refused the gateway's key (401/403, API_KEY_INVALID).",
        "",
    ),
}


def render_metrics(status: Mapping[str, Any]) -> str:
    """Prometheus text exposition (version 0.0.4) of a /status document."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for key, value in status.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name, kind, help_text, labels = _METRICS.get(
            key, (f"pygate_{key}", "untyped", f"{key} from /status.", "")
        )
        sample = f"{name}{{{labels}}} {value}" if labels else f"{name} {value}"
        families.setdefault(name, (kind, help_text, []))[2].append(sample)
    lines = []
    if "version" in status:
        lines += [
            "# HELP pygate_info Build information.",
            "# TYPE pygate_info gauge",
            f'pygate_info{{version="{_label(str(status["version"]))}"}} 1',
        ]
    for name, (kind, help_text, samples) in families.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    return "\n".join(lines) + "\n"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def register(app: web.Application, status: Callable[[], Mapping[str, Any]]) -> None:
    """Serve GET /metrics on `app` from `status()` (the admin /status document)."""

    async def metrics(_request: web.Request) -> web.Response:
        return web.Response(
            text=render_metrics(status()),
            headers={"Content-Type": CONTENT_TYPE},
        )

    app.router.add_get("/metrics", metrics)
