"""`pygate logs report`: canned reports over a window, as a table, CSV or JSON.

Runs through `pygate.cli.commands.run_query`, the same path as `pygate logs query`: the
running gateway's admin listener when it answers (chDB lets one process own the data
directory), else the store opened read-only.
"""

from __future__ import annotations

import argparse
import sys

import orjson

from pygate.cli.admin_client import AdminError
from pygate.logstore import LogStoreError, QueryResult
from pygate.logstore.render import render
from pygate.reports.catalog import REPORTS
from pygate.reports.prepare import PreparedReport, ReportError, ReportOptions, prepare

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def add_report_parser(logs_commands: argparse._SubParsersAction) -> None:
    catalog = "\n".join(f"  {r.name:<12} {r.description}" for r in REPORTS.values())
    parser = logs_commands.add_parser(
        "report",
        help="canned reports over a time window",
        description="Run a canned report over a window of call logs "
        "(without REPORT: every report except `request`).",
        epilog=f"reports:\n{catalog}\n\ntimes are UTC unless they carry an offset",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", "-c", required=True, metavar="FILE", help="gateway YAML file")
    parser.add_argument("report", nargs="?", choices=list(REPORTS), metavar="REPORT")
    parser.add_argument(
        "--since", metavar="DURATION", help="window ending now: 15m, 1h, 7d (default 1h)"
    )
    parser.add_argument(
        "--from", dest="start", metavar="TIME", help="window start: ISO 8601 or unix seconds"
    )
    parser.add_argument("--to", dest="end", metavar="TIME", help="window end (default now)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
    parser.add_argument("--route", help="only this route")
    parser.add_argument("--consumer", help="only this consumer")
    parser.add_argument("--request-id", metavar="ID", help="the request report: this request id")
    parser.add_argument("--limit", type=int, metavar="N", help="rows for top-N reports")


def logs_report(args: argparse.Namespace) -> int:
    from pygate.cli.commands import client_failure, load_for_client, run_query

    names = _report_names(args)
    options = ReportOptions(
        since=args.since,
        start=args.start,
        end=args.end,
        route=args.route,
        consumer=args.consumer,
        request_id=args.request_id,
        limit=args.limit,
    )
    try:
        if len(names) > 1 and args.format == "csv":
            raise ReportError("csv holds one table: name a REPORT, e.g. pygate logs report traffic")
        prepared = [prepare(name, _options_for(name, options, len(names) > 1)) for name in names]
    except ReportError as exc:
        print(f"pygate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    loaded = load_for_client(args.config)
    if loaded is None:
        return EXIT_USAGE

    results: list[tuple[PreparedReport, QueryResult]] = []
    for report in prepared:
        try:
            results.append((report, run_query(loaded, report.sql)))
        except (AdminError, LogStoreError) as exc:
            return client_failure(exc, f"{report.report.name} report")
    sys.stdout.write(_output(results, args.format))
    return _not_found_status(results, args.request_id)


def _report_names(args: argparse.Namespace) -> list[str]:
    if args.report:
        return [args.report]
    if args.request_id:
        return ["request"]
    return [
        name
        for name, report in REPORTS.items()
        if report.in_overview and not report.needs_request_id
    ]


def _options_for(name: str, options: ReportOptions, overview: bool) -> ReportOptions:
    """In the overview each report takes the filters it understands and ignores the rest,
    so `--route R` narrows everything that can be narrowed by route."""
    if not overview:
        return options
    report = REPORTS[name]
    route = options.route if "route" in report.filters else None
    consumer = options.consumer if "consumer" in report.filters else None
    if report.filters_exclusive and route is not None:
        consumer = None
    limit = options.limit if report.default_limit is not None else None
    return ReportOptions(options.since, options.start, options.end, route, consumer, None, limit)


def _output(results: list[tuple[PreparedReport, QueryResult]], fmt: str) -> str:
    if fmt == "json":
        by_name = {p.report.name: _objects(result) for p, result in results}
        body = by_name if len(results) > 1 else next(iter(by_name.values()))
        return orjson.dumps(body, option=orjson.OPT_INDENT_2).decode() + "\n"
    if fmt == "csv":
        return render(results[0][1], "csv")
    sections = []
    for prepared, result in results:
        title = f"# {prepared.describe()}\n"
        if prepared.report.vertical:
            sections.append(title + "".join(render(r, "table") for r in _vertical(result)))
        else:
            sections.append(title + render(result, "table"))
    return "\n".join(sections)


def _objects(result: QueryResult) -> list[dict]:
    return [dict(zip(result.columns, row, strict=True)) for row in result.rows]


def _vertical(result: QueryResult) -> list[QueryResult]:
    """One two-column table per record: a full record is too wide to read across."""
    if not result.rows:
        return [QueryResult(["field", "value"], [])]
    return [
        QueryResult(["field", "value"], [[c, v] for c, v in zip(result.columns, row, strict=True)])
        for row in result.rows
    ]


def _not_found_status(
    results: list[tuple[PreparedReport, QueryResult]], request_id: str | None
) -> int:
    # Like grep: a lookup that finds nothing exits 1, so scripts can tell.
    for prepared, result in results:
        if prepared.report.needs_request_id and not result.rows:
            print(
                f"pygate: no record of request {request_id!r} in {prepared.window.describe()} "
                "(records reach the store within log.flush_interval)",
                file=sys.stderr,
            )
            return EXIT_FAILURE
    return EXIT_OK
