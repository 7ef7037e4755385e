"""The `pygate` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad config/usage."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pygate import __version__

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pygate", description="An API gateway: Rust data plane, call logs in chDB."
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    _config_option(serve)
    serve.add_argument("--watch", action="store_true", help="reload when the config file changes")

    logd = commands.add_parser("logd", help="run the log daemon that owns the log store")
    _config_option(logd)

    check = commands.add_parser("check", help="validate a config file and exit")
    _config_option(check)

    commands.add_parser("version", help="print the pygate and core versions")

    status = commands.add_parser("status", help="show the counters of a running gateway")
    _config_option(status)
    status.add_argument("--json", action="store_true", help="print the raw JSON")

    logs = commands.add_parser("logs", help="call logs")
    logs_commands = logs.add_subparsers(dest="logs_command", metavar="COMMAND", required=True)
    query = logs_commands.add_parser("query", help="run SQL against the call log store")
    _config_option(query)
    query.add_argument(
        "sql", help='e.g. "SELECT route, count() FROM pygate.requests GROUP BY route"'
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    from pygate.reports.command import add_report_parser

    add_report_parser(logs_commands)
    from pygate.chserver.command import add_serve_parser

    add_serve_parser(logs_commands)

    from pygate.cli.bench import add_bench_parser

    add_bench_parser(commands)
    from pygate.cli.admin_entities import add_admin_parser

    add_admin_parser(commands)

    demo = commands.add_parser("demo-upstream", help="run a small HTTP upstream for trying pygate")
    demo.add_argument("--listen", default="127.0.0.1:9001", help="HOST:PORT (default %(default)s)")
    return parser


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", "-c", required=True, metavar="FILE", help="gateway YAML file")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "serve":
            from pygate.server.serve import serve

            return serve(args.config, watch=args.watch)
        if args.command == "logd":
            from pygate.logd.server import run_logd

            return run_logd(args.config)
        if args.command == "check":
            return _check(args.config)
        if args.command == "version":
            return _version()
        if args.command == "status":
            from pygate.cli.commands import status

            return status(args.config, as_json=args.json)
        if args.command == "logs" and args.logs_command == "serve":
            from pygate.chserver.command import logs_serve

            return logs_serve(args)
        if args.command == "logs" and args.logs_command == "report":
            from pygate.reports.command import logs_report

            return logs_report(args)
        if args.command == "logs":
            from pygate.cli.commands import logs_query

            return logs_query(args.config, args.sql, args.format)
        if args.command == "admin":
            from pygate.cli.admin_entities import run_admin_command

            return run_admin_command(args)
        if args.command == "bench":
            from pygate.cli.bench import run_bench

            return run_bench(args)
        if args.command == "demo-upstream":
            from pygate.cli.demo_upstream import run_demo_upstream

            return run_demo_upstream(args.listen)
    except KeyboardInterrupt:
        return 130
    raise AssertionError(f"unhandled command {args.command}")


def _check(config_file: str) -> int:
    from pygate.config import ConfigError, load_config
    from pygate.core import CoreUnavailable

    try:
        # Every stage at once, the core's compilation included: all problems in one run.
        loaded = load_config(config_file, check_core=True)
    except ConfigError as exc:
        print("\n".join(exc.lines()), file=sys.stderr)
        return EXIT_CONFIG
    except CoreUnavailable as exc:
        print(f"pygate: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"config OK: {config_file} ({loaded.summary()})")
    return EXIT_OK


def _version() -> int:
    from pygate.core import CoreUnavailable, load_core

    try:
        core_version = load_core().version()
    except CoreUnavailable as exc:
        print(f"pygate {__version__} (core unavailable)")
        print(f"pygate: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"pygate {__version__} (core {core_version})")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
