"""Target health, as the core sees it (`Gateway.upstream_health()`, upstream/health.rs):
one view for `/status` (and so `pygate status`), `/metrics` and the admin API.

    GET /upstreams/{name}/health   {"upstream": name, "healthy": n, "targets": [...]}

A target is healthy when it takes requests: its active probes (health_check.active) do
not say it is down and passive health (max_fails) has not ejected it. Probe answers are
never kept or shown beyond their status code. `pygate status` prints the same rows
(pygate/cli/commands.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from pygate.server.prom_text import label

STATUS_KEY = "upstream_health"


def rows(core: Any) -> list[dict[str, Any]]:
    """Every target of every upstream (the core's view of the live config)."""
    return list(core.upstream_health()) if core is not None else []


def metric_lines(targets: Sequence[Mapping[str, Any]]) -> list[str]:
    """Prometheus families per target. Labels are bounded: upstreams and their targets
    come from the config."""
    if not targets:
        return []
    lines = [
        "# HELP pygate_upstream_target_healthy 1 if the target takes requests (probes and "
        "passive health agree), else 0.",
        "# TYPE pygate_upstream_target_healthy gauge",
    ]
    probed = [t for t in targets if t.get("probe") is not None]
    for t in targets:
        labels = f'upstream="{label(t["upstream"])}",target="{label(t["target"])}"'
        lines.append(f"pygate_upstream_target_healthy{{{labels}}} {int(t['healthy'])}")
    if not probed:
        return lines
    lines += [
        "# HELP pygate_upstream_health_probes_total Active health check probes by result.",
        "# TYPE pygate_upstream_health_probes_total counter",
    ]
    for t in probed:
        labels = f'upstream="{label(t["upstream"])}",target="{label(t["target"])}"'
        for result, key in (("passed", "passed"), ("failed", "failed")):
            n = t["probe"][key]
            lines.append(f'pygate_upstream_health_probes_total{{{labels},result="{result}"}} {n}')
    lines += [
        "# HELP pygate_upstream_health_transitions_total Times probes took a target out "
        "or brought it back.",
        "# TYPE pygate_upstream_health_transitions_total counter",
    ]
    for t in probed:
        labels = f'upstream="{label(t["upstream"])}",target="{label(t["target"])}"'
        n = t["probe"]["transitions"]
        lines.append(f"pygate_upstream_health_transitions_total{{{labels}}} {n}")
    return lines


def register(app: web.Application, core: Any) -> None:
    """Serve GET /upstreams/{name}/health on the admin app."""

    async def health(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        targets = [t for t in rows(core) if t["upstream"] == name]
        if not targets:
            body = {"error": "not_found", "message": f'no upstream named "{name}"'}
            return web.Response(body=orjson.dumps(body), status=404,
                                content_type="application/json")  # fmt: skip
        answer = {
            "upstream": name,
            "healthy": sum(1 for t in targets if t["healthy"]),
            "targets": [{k: v for k, v in t.items() if k != "upstream"} for t in targets],
        }
        return web.Response(body=orjson.dumps(answer), content_type="application/json")

    app.router.add_get("/upstreams/{name}/health", health)
