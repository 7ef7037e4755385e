"""Compile a validated GatewayConfig into the core config JSON (see pygate/_core.pyi).

The core config is deliberately flat and explicit: every default is filled in here,
durations become milliseconds and sizes bytes, so the Rust side never guesses.
`user_path` maps a field path in the core config back to the YAML path, which is
how core errors end up pointing at a line of the user's file.
"""

from __future__ import annotations

import os
from typing import Any

import msgspec

from pygate.config.ai_routes import AiListener, ai_routes, ai_upstreams, with_ai_secret
from pygate.config.cluster import compile_cluster
from pygate.config.listeners import compile_listeners
from pygate.config.paths import FieldPath
from pygate.config.schema import (
    AuthFailureLimit,
    Consumer,
    GatewayConfig,
    Http2,
    Route,
    Target,
    Upstream,
    WebSocket,
)
from pygate.config.tracing import compile_tracing
from pygate.plugins import NativePlugin, get_plugin
from pygate.plugins.registry import python_phases


def compile_core_config(
    config: GatewayConfig, ai_listener: AiListener | None = None
) -> dict[str, Any]:
    """`ai_listener`: the AI listener `pygate serve` bound (None: only checking)."""
    limits = config.limits
    return {
        "listen": None if config.listen is None else str(config.listen),
        "listeners": compile_listeners(config.listeners),
        "workers": config.workers if config.workers is not None else default_workers(),
        "limits": {
            "max_header_bytes": int(limits.max_header_bytes),
            "max_uri_bytes": int(limits.max_uri_bytes),
            "max_body_bytes": int(limits.max_body_bytes),
            "header_timeout_ms": int(limits.header_timeout),
            "keepalive_timeout_ms": int(limits.keepalive_timeout),
            "client_body_timeout_ms": int(limits.client_body_timeout),
            "send_timeout_ms": int(limits.send_timeout),
            "auth_failures": _auth_failures(limits.auth_failures),
            "http2": _http2(config.http2),
        },
        "http": {
            "merge_slashes": config.http.merge_slashes,
            "escaped_slashes": config.http.escaped_slashes,
            "underscores_in_headers": config.http.underscores_in_headers,
            "trusted_proxies": list(config.http.trusted_proxies),
        },
        "log_buffer_capacity": config.log.buffer,
        "record_calls": config.log.enabled,
        "upstreams": [
            _upstream(u) for u in [*config.upstreams, *ai_upstreams(config, ai_listener)]
        ],
        "consumers": [_consumer(c) for c in config.consumers],
        "cluster": compile_cluster(config.cluster),
        "tracing": compile_tracing(config.tracing),
        "routes": with_ai_secret(
            [_route(r, int(config.plugin_timeout)) for r in [*config.routes, *ai_routes(config)]],
            ai_listener,
        ),
    }


def _http2(h2: Http2) -> dict[str, Any]:
    return {
        "h2c": h2.h2c,
        "over_tls": h2.over_tls,
        "max_concurrent_streams": h2.max_concurrent_streams,
        "max_header_list_size": int(h2.max_header_list_size),
        "initial_stream_window": int(h2.initial_stream_window),
        "initial_connection_window": int(h2.initial_connection_window),
        "max_frame_size": int(h2.max_frame_size),
        "max_pending_reset_streams": h2.max_pending_reset_streams,
        "max_local_error_resets": h2.max_local_error_resets,
        "extended_connect": h2.extended_connect,
    }


def _auth_failures(limit: AuthFailureLimit | None) -> dict[str, Any] | None:
    if limit is None:
        return None
    return {
        "rate": limit.rate,
        "per_ms": max(1, int(limit.per)),
        "burst": limit.burst,
        "max_tracked": limit.max_addresses,
    }


def core_config_json(config: GatewayConfig, ai_listener: AiListener | None = None) -> str:
    return msgspec.json.encode(compile_core_config(config, ai_listener)).decode()


def default_workers() -> int:
    return os.cpu_count() or 1


def _consumer(consumer: Consumer) -> dict[str, Any]:
    return {
        "name": str(consumer.name),
        "keys": list(consumer.keys),
        "basic_auth": [
            {"username": c.username, "password": c.password} for c in consumer.basic_auth
        ],
    }


def _upstream(upstream: Upstream) -> dict[str, Any]:
    targets = [
        {"addr": str(t.addr), "weight": t.weight}
        if isinstance(t, Target)
        else {"addr": str(t), "weight": 1}
        for t in upstream.targets
    ]
    return {
        "name": str(upstream.name),
        "targets": targets,
        "balance": upstream.balance,
        "connect_timeout_ms": int(upstream.connect_timeout),
        "read_timeout_ms": int(upstream.read_timeout),
        "retries": upstream.retries,
        "max_fails": upstream.max_fails,
        "fail_cooldown_ms": int(upstream.fail_cooldown),
        "keepalive": upstream.keepalive,
        "scheme": upstream.scheme,
        "protocol": upstream.protocol,
        "ca_file": upstream.ca_file,
        "tls_verify": upstream.tls_verify,
        "sni": upstream.sni,
        "health_check": _active_check(upstream),
    }


def _active_check(upstream: Upstream) -> dict[str, Any] | None:
    active = upstream.health_check.active if upstream.health_check is not None else None
    if active is None:
        return None
    return {
        "type": active.type,
        "path": active.path,
        "host": active.host,
        "interval_ms": int(active.interval),
        "timeout_ms": int(active.timeout),
        "successes": active.successes,
        "failures": active.failures,
        "expected_statuses": list(active.expected_statuses),
    }


def _https_port(redirect: bool | int) -> int | None:
    if redirect is False:
        return None
    return 443 if redirect is True else redirect


def _websocket(ws: WebSocket | bool) -> dict[str, int] | None:
    if ws is False:
        return None
    ws = WebSocket() if ws is True else ws
    return {
        "idle_timeout_ms": int(ws.idle_timeout),
        "max_lifetime_ms": int(ws.max_lifetime),
        "max_frame_size": int(ws.max_frame_size),
    }


def _route(route: Route, plugin_timeout_ms: int) -> dict[str, Any]:
    compiled: dict[str, Any] = {
        "name": str(route.name),
        "hosts": [str(h) for h in route.hosts],
        "paths": [str(p) for p in route.paths],
        "methods": [str(m) for m in route.methods],
        "upstream": route.upstream,
        "preserve_host": route.preserve_host,
        "websocket": _websocket(route.websocket),
        "https_redirect_port": _https_port(route.https_redirect),
    }
    # The native plugins by the names users write, each as its Python twin's `to_core`
    # says (the core builds them with core-rs/src/plugins/mod.rs's REGISTRY).
    compiled["plugins"] = {
        name: plugin.to_core(plugin_config)
        for name, plugin_config in route.plugins.items()
        if isinstance(plugin := get_plugin(name), NativePlugin)
    }
    # The core calls into Python only for the phases some Python plugin of the route has;
    # null keeps the route entirely in the core.
    phases = python_phases(route.plugins)
    compiled["python"] = (
        {
            "access": "access" in phases,
            "response": "response" in phases,
            "log": "log" in phases,
            "timeout_ms": plugin_timeout_ms,
        }
        if phases
        else None
    )
    return compiled


# Core fields whose YAML name is not simply the core name without "_ms".
_RENAMED: dict[FieldPath, FieldPath] = {
    ("log_buffer_capacity",): ("log", "buffer"),
}


def user_path(core_path: FieldPath) -> FieldPath:
    """Translate a core config path (as in core error messages) to the YAML path.

    A native plugin's is the same on both sides (`routes[0].plugins.jwt.secrets[0]`)."""
    if core_path in _RENAMED:
        return _RENAMED[core_path]
    out: list[str | int] = []
    for index, part in enumerate(core_path):
        if isinstance(part, str):
            if part.endswith("_ms") and index == len(core_path) - 1:
                part = part[: -len("_ms")]
        out.append(part)
    return tuple(out)
