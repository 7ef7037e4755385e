"""CLI commands that talk to a running gateway: `status` and `logs query`.

They load the config without its route plugins (`import_plugins=False`): they need
the admin listener and the log store, not the plugins, so a module plugin that is not
on this shell's PYTHONPATH does not stop them. Every request names the config and
store it is for: a gateway that serves another config refuses (exit code 2).
"""

from __future__ import annotations

import sys
from typing import Any

from pygate.cli.admin_client import (
    AdminError,
    AdminTarget,
    AdminUnreachable,
    TokenUnusable,
    WrongGateway,
)
from pygate.config import ConfigError, LoadedConfig, load_config
from pygate.logd.client import LogdStore, WrongLogd
from pygate.logstore import LogStore, LogStoreError, QueryResult, StoreUnavailable, open_store
from pygate.logstore.render import render

_QUERY_TIMEOUT_S = 300.0
EXIT_FAILURE, EXIT_CONFIG = 1, 2


def load_for_client(config_file: str) -> LoadedConfig | None:
    """The config as the client commands need it; None (after printing why) if bad."""
    try:
        return load_config(config_file, import_plugins=False)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return None


def admin_target(loaded: LoadedConfig) -> AdminTarget | None:
    try:
        return AdminTarget.of(loaded)
    except TokenUnusable as exc:
        print(f"pygate: {exc}", file=sys.stderr)
        return None


def client_failure(exc: Exception, what: str) -> int:
    """Print why a command that needed the gateway failed; its exit code."""
    print(f"pygate: {what} failed: {exc}", file=sys.stderr)
    wrong = isinstance(exc, WrongGateway | TokenUnusable | WrongLogd)
    return EXIT_CONFIG if wrong else EXIT_FAILURE


def status(config_file: str, *, as_json: bool) -> int:
    loaded = load_for_client(config_file)
    target = admin_target(loaded) if loaded is not None else None
    if target is None:
        return EXIT_CONFIG
    try:
        counters = target.request("/status")
    except AdminUnreachable:
        print(f"pygate: no gateway answers on admin {target.listen}", file=sys.stderr)
        return EXIT_FAILURE
    except AdminError as exc:
        return client_failure(exc, "status")
    if as_json:
        import orjson

        print(orjson.dumps(counters, option=orjson.OPT_INDENT_2).decode())
    else:
        print(_format_counters(counters), end="")
    return 0


def _format_counters(counters: dict[str, Any]) -> str:
    # The admin listener's per-target health rows (pygate/server/upstream_health.py).
    targets = counters.pop("upstream_health", None) or []
    if isinstance(counters.get("listeners"), list):
        counters["listeners"] = ", ".join(counters["listeners"]) or "(none)"
    width = max((len(key) for key in counters), default=0)
    flat = "".join(f"{key.ljust(width)}  {value}\n" for key, value in counters.items())
    return flat + _health_lines(targets)


def _health_lines(targets: list[dict[str, Any]]) -> str:
    """The `pygate status` section: one line per target."""
    if not targets:
        return ""
    width_u = max(len(t["upstream"]) for t in targets)
    width_t = max(len(t["target"]) for t in targets)
    lines = ["upstream health:"]
    for t in targets:
        state = "healthy" if t["healthy"] else "DOWN"
        why = []
        probe = t.get("probe")
        if t["ejected"]:
            why.append("ejected after failed requests")
        if probe is not None:
            verdict = "passing" if probe["healthy"] else "failing"
            detail = f"probes {verdict}: {probe['passed']} passed, {probe['failed']} failed"
            if probe["last_status"] is not None:
                detail += f", last status {probe['last_status']}"
            if probe["last_failure"]:
                detail += f", last failure {probe['last_failure']}"
            why.append(detail)
        suffix = f"  ({'; '.join(why)})" if why else ""
        lines.append(
            f"  {t['upstream'].ljust(width_u)}  {t['target'].ljust(width_t)}  {state}{suffix}"
        )
    return "\n".join(lines) + "\n"


def logs_query(config_file: str, sql: str, fmt: str) -> int:
    loaded = load_for_client(config_file)
    if loaded is None:
        return EXIT_CONFIG
    try:
        result = run_query(loaded, sql)
    except (AdminError, LogStoreError) as exc:
        return client_failure(exc, "query")
    sys.stdout.write(render(result, fmt))
    return 0


def save_bench_run(config_file: str, report: dict) -> str:
    """Keep a `pygate bench` report in the store of `config_file`; returns where it went.

    Like queries, it goes through a running gateway (which owns a chDB directory), else
    straight to the store. Raises ConfigError, AdminError, LogStoreError."""
    loaded = load_config(config_file, import_plugins=False)
    target = AdminTarget.of(loaded)
    try:
        target.request("/bench-runs", payload=report)
        return f"saved to pygate.bench_runs through the gateway at {target.listen}"
    except AdminUnreachable:
        pass
    logd = reach_logd(loaded)
    if logd is not None:
        with logd:
            logd.insert_bench_run(report)
        return f"saved to pygate.bench_runs through logd at {logd.path}"
    with open_store(loaded.store, retention_days=loaded.config.log.retention_days) as store:
        store.migrate()
        store.insert_bench_run(report)
    return f"saved to pygate.bench_runs in {loaded.store.url}"


def reach_logd(loaded: LoadedConfig) -> LogStore | None:
    """The logd of `loaded` if one answers on its socket (log.daemon.enabled), else None.

    Raises WrongLogd when the socket is served for another store: never its data."""
    if not loaded.config.log.daemon.enabled:
        return None
    try:
        store = LogdStore(loaded, role="cli")
    except OSError:
        return None
    try:
        store.query("SELECT 1", "TSV")  # connects, exchanging identities
    except StoreUnavailable:
        store.close()
        return None
    return store


def run_query(loaded: LoadedConfig, sql: str) -> QueryResult:
    """Raises AdminError (WrongGateway: another gateway answers), LogStoreError."""
    # chDB lets one process own a data directory: while the gateway runs, it answers
    # the query for us; otherwise we open the store ourselves, read-only.
    target = AdminTarget.of(loaded)
    try:
        answer = target.request(
            "/logs/query", payload={"sql": sql, "format": "json"}, timeout_s=_QUERY_TIMEOUT_S
        )
        return QueryResult(columns=answer["columns"], rows=answer["rows"])
    except AdminUnreachable:
        pass
    logd = reach_logd(loaded)  # a logd running without a gateway owns chDB too
    if logd is not None:
        with logd:
            return logd.query_rows(sql)
    with open_store(loaded.store, read_only=True) as store:
        return store.query_rows(sql)
