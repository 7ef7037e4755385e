"""CLI commands that talk to a running gateway: `status` and `logs query`."""

from __future__ import annotations

import sys
from typing import Any

from pygate.admin_client import AdminError, AdminUnreachable, admin_request
from pygate.config import ConfigError, LoadedConfig, load_config
from pygate.logstore import LogStoreError, QueryResult, open_store
from pygate.logstore.render import render

_QUERY_TIMEOUT_S = 300.0


def _load(config_file: str) -> LoadedConfig | None:
    try:
        return load_config(config_file)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return None


def status(config_file: str, *, as_json: bool) -> int:
    loaded = _load(config_file)
    if loaded is None:
        return 2
    admin = loaded.config.admin
    try:
        counters = admin_request(admin.listen, "/status", token=admin.token)
    except AdminUnreachable:
        print(f"pygate: no gateway answers on admin {admin.listen}", file=sys.stderr)
        return 1
    except AdminError as exc:
        print(f"pygate: status failed: {exc}", file=sys.stderr)
        return 1
    if as_json:
        import orjson

        print(orjson.dumps(counters, option=orjson.OPT_INDENT_2).decode())
    else:
        print(_format_counters(counters), end="")
    return 0


def _format_counters(counters: dict[str, Any]) -> str:
    width = max((len(key) for key in counters), default=0)
    return "".join(f"{key.ljust(width)}  {value}\n" for key, value in counters.items())


def logs_query(config_file: str, sql: str, fmt: str) -> int:
    loaded = _load(config_file)
    if loaded is None:
        return 2
    try:
        result = run_query(loaded, sql)
    except (AdminError, LogStoreError) as exc:
        print(f"pygate: query failed: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(result, fmt))
    return 0


def save_bench_run(config_file: str, report: dict) -> str:
    """Keep a `pygate bench` report in the store of `config_file`; returns where it went.

    Like queries, it goes through a running gateway (which owns a chDB directory), else
    straight to the store."""
    loaded = load_config(config_file)
    admin = loaded.config.admin
    try:
        admin_request(admin.listen, "/bench-runs", token=admin.token, payload=report)
        return f"saved to pygate.bench_runs through the gateway at {admin.listen}"
    except AdminUnreachable:
        pass
    with open_store(loaded.store, retention_days=loaded.config.log.retention_days) as store:
        store.migrate()
        store.insert_bench_run(report)
    return f"saved to pygate.bench_runs in {loaded.store.url}"


def run_query(loaded: LoadedConfig, sql: str) -> QueryResult:
    # chDB lets one process own a data directory: while the gateway runs, it answers
    # the query for us; otherwise we open the store ourselves, read-only.
    admin = loaded.config.admin
    try:
        answer = admin_request(
            admin.listen,
            "/logs/query",
            token=admin.token,
            payload={"sql": sql, "format": "json"},
            timeout_s=_QUERY_TIMEOUT_S,
        )
        return QueryResult(columns=answer["columns"], rows=answer["rows"])
    except AdminUnreachable:
        pass
    with open_store(loaded.store, read_only=True) as store:
        return store.query_rows(sql)
