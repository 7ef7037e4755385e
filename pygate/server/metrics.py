"""`GET /metrics` on the admin listener: the /status counters and per-route counters as
Prometheus text.

The same numbers as `pygate status`, renamed to Prometheus conventions (`_total` for
counters, base units); the AI call log's counters (`ai_*` in /status) are typed like the
gateway's own. Keys without an entry below are still exported (a `*_total` as a counter,
others untyped), so a counter added to the core shows up without a release of this file.
Non-numeric status fields (config_file, last error) are left out.

Per route (from the core's lock-free per-worker counters, core-rs/src/route_metrics.rs):
`pygate_route_responses_total{route,class}`, and the histograms
`pygate_route_latency_seconds{route}` (arrival to last response byte) and
`pygate_route_upstream_latency_seconds{route}` (to the upstream's response head). The
`route` label is bounded: at most 256 route names over the process's life get their own,
later ones share `route="_other"`. Counters survive reloads (kept by route name); a
removed or renamed route keeps its last values until a restart, and a new name starts
at zero.

Per upstream target (pygate/server/upstream_health.py): `pygate_upstream_target_healthy`
and, with active checks, `pygate_upstream_health_probes_total{result}` and
`pygate_upstream_health_transitions_total`; and its traffic
(pygate/server/upstream_metrics.py): `pygate_upstream_responses_total{class}`,
`pygate_upstream_failures_total{reason}`, `pygate_upstream_latency_seconds`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aiohttp import web

from pygate.server.prom_text import STATUS_CLASSES, bucket_bounds, histogram_lines, label
from pygate.server.upstream_health import STATUS_KEY as HEALTH_KEY
from pygate.server.upstream_health import metric_lines
from pygate.server.upstream_metrics import metric_lines as upstream_lines

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
    # Cluster-wide limits on Redis (core-rs/src/cluster/mod.rs); zeros without cluster.redis.
    "cluster_redis_up": (
        "pygate_cluster_redis_up",
        "gauge",
        "1 while the cluster's Redis answers (0 also without cluster.redis).",
        "",
    ),
    "cluster_redis_down_total": (
        "pygate_cluster_redis_down_total",
        "counter",
        "Times the cluster's Redis became unreachable (logged once each).",
        "",
    ),
    "cluster_fallback_decisions_total": (
        "pygate_cluster_fallback_decisions_total",
        "counter",
        "Cluster rate-limit decisions made without Redis (cluster.on_redis_down applied).",
        "",
    ),
    "cluster_lease_refills_total": (
        "pygate_cluster_lease_refills_total",
        "counter",
        "Token leases taken from Redis (one script call each).",
        "",
    ),
    "cluster_nodes": (
        "pygate_cluster_nodes",
        "gauge",
        "Gateway nodes in the cluster's last heartbeat.",
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
    "plugin_log_dropped": (
        "pygate_plugin_log_dropped_total",
        "counter",
        "Finished calls not handed to Python log plugins: their queue was full.",
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
    # The supervised `pygate logd` (log.daemon.enabled, the default).
    "logd_pid": ("pygate_logd_pid", "gauge", "Process id of the log daemon (0: none).", ""),
    "logd_running": ("pygate_logd_running", "gauge", "1 while the log daemon runs.", ""),
    "logd_restarts": (
        "pygate_logd_restarts_total",
        "counter",
        "Times the log daemon was restarted after it exited.",
        "",
    ),
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
    # The admin state's version (SQLite or the shared Postgres) and the one this node
    # serves: on a cluster, a node whose served version lags the state's is behind.
    "state_version": (
        "pygate_admin_state_version",
        "gauge",
        "Version of the admin state (bumped by every admin write).",
        "",
    ),
    "state_served_version": (
        "pygate_admin_state_served_version",
        "gauge",
        "Version of the admin state this node serves.",
        "",
    ),
}


def _status_metric(key: str) -> tuple[str, str, str, str]:
    """(name, type, help, labels) of a /status key. The AI call log's shipper counters are
    the gateway's own under an `ai_` prefix, typed as theirs."""
    if key in _METRICS:
        return _METRICS[key]
    if key.startswith("ai_") and key[3:] in _METRICS:
        name, kind, help_text, labels = _METRICS[key[3:]]
        return f"pygate_ai_{name.removeprefix('pygate_')}", kind, f"AI calls: {help_text}", labels
    # A counter added to the core shows up without a release of this file.
    if key.endswith("_total"):
        return f"pygate_{key}", "counter", f"{key} from /status.", ""
    return f"pygate_{key}", "untyped", f"{key} from /status.", ""


def render_metrics(
    status: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]] = (),
    latency_bounds_us: Sequence[int] = (),
) -> str:
    """Prometheus text exposition (version 0.0.4) of a /status document and the core's
    per-route counters (`Gateway.route_metrics()`, histogram bounds in microseconds)."""
    families: dict[str, tuple[str, str, list[str]]] = {}
    for key, value in status.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        name, kind, help_text, labels = _status_metric(key)
        sample = f"{name}{{{labels}}} {value}" if labels else f"{name} {value}"
        families.setdefault(name, (kind, help_text, []))[2].append(sample)
    lines = []
    if "version" in status:
        lines += [
            "# HELP pygate_info Build information.",
            "# TYPE pygate_info gauge",
            f'pygate_info{{version="{label(str(status["version"]))}"}} 1',
        ]
    for name, (kind, help_text, samples) in families.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    if routes:
        lines += _route_lines(routes, latency_bounds_us)
    return "\n".join(lines) + "\n"


# Per route (bounded: routes are config-defined, and the core gives at most 256 route
# names their own label over the process's life, the rest route="_other"; a removed or
# renamed route's series stays at its last values until a restart).
_HISTOGRAMS = (
    (
        "latency_us",
        "pygate_route_latency_seconds",
        "Time from a request's arrival to its last response byte, by route.",
    ),
    (
        "upstream_latency_us",
        "pygate_route_upstream_latency_seconds",
        "Time from sending to the upstream to its response head, by route.",
    ),
)


def _route_lines(routes: Sequence[Mapping[str, Any]], bounds_us: Sequence[int]) -> list[str]:
    lines = [
        "# HELP pygate_route_responses_total Responses by route and status class.",
        "# TYPE pygate_route_responses_total counter",
    ]
    for r in routes:
        route = label(str(r["route"]))
        for cls, n in zip(STATUS_CLASSES, r["responses"], strict=True):
            lines.append(f'pygate_route_responses_total{{route="{route}",class="{cls}"}} {n}')
    les = bucket_bounds(bounds_us)
    for key, name, help_text in _HISTOGRAMS:
        lines += [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        for r in routes:
            lines += histogram_lines(name, f'route="{label(str(r["route"]))}"', r[key], les)
    return lines


def register(
    app: web.Application,
    status: Callable[[], Mapping[str, Any]],
    core: Any = None,
) -> None:
    """Serve GET /metrics on `app` from `status()` (the admin /status document) and, with
    `core` (a pygate._core.Gateway), its per-route counters."""
    bounds = list(core.latency_bounds_us()) if core is not None else []

    async def metrics(_request: web.Request) -> web.Response:
        routes = core.route_metrics() if core is not None else []
        current = status()
        text = render_metrics(current, routes, bounds)
        health = metric_lines(current.get(HEALTH_KEY) or [])
        if core is not None:
            health += upstream_lines(core.upstream_metrics(), bounds)
        return web.Response(
            text=text + "".join(f"{line}\n" for line in health),
            headers={"Content-Type": CONTENT_TYPE},
        )

    app.router.add_get("/metrics", metrics)
