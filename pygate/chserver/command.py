"""The `pygate logs serve` subcommand: arguments, and the hand-off to server.py."""

from __future__ import annotations

import argparse


def add_serve_parser(logs_commands) -> None:
    serve = logs_commands.add_parser(
        "serve",
        help="serve the log store over ClickHouse's HTTP interface",
        description=(
            "Serve the embedded chDB log store (log.store: chdb://...) over ClickHouse's "
            "HTTP interface, for clickhouse-connect, curl or Grafana. Users come from "
            "log.serve.users (passwords required; users: [] for none, on loopback only). "
            "While a logd owns the store (log.daemon.enabled), statements run in logd, "
            "beside a running gateway; otherwise this process opens the store itself."
        ),
    )
    serve.add_argument("--config", "-c", required=True, metavar="FILE", help="gateway YAML file")
    serve.add_argument(
        "--listen", metavar="HOST:PORT", help="default: log.serve.listen (127.0.0.1:8123)"
    )
    serve.add_argument(
        "--allow-writes",
        action="store_true",
        help="let users without an allow_writes setting of their own INSERT into pygate's "
        "tables (never DDL)",
    )


def logs_serve(args: argparse.Namespace) -> int:
    from pygate.chserver.server import ServeOptions, run_logs_serve

    return run_logs_serve(
        ServeOptions(config_file=args.config, listen=args.listen, allow_writes=args.allow_writes)
    )
