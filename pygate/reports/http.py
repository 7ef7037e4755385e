"""Reports on the admin listener, for the dashboard and for scripts:

    GET /logs/reports               the catalog: name, title, description, filters
    GET /logs/report/{name}?since=1h&from=..&to=..&route=..&consumer=..&request_id=..&limit=..

A report answers `{"report", "title", "window": {"from", "to"}, "bucket_s",
"columns", "rows"}`; a bad option is a 400 with the same message the CLI prints.
The admin app's token check covers these routes like every other.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from pygate.logstore import LogStoreError, QueryResult
from pygate.reports.catalog import REPORTS
from pygate.reports.prepare import ReportError, ReportOptions, prepare
from pygate.reports.window import iso_utc

QueryRunner = Callable[[str], Awaitable[QueryResult]]
_RUN_QUERY = web.AppKey("reports_run_query", QueryRunner)


def register(app: web.Application, run_query: QueryRunner) -> None:
    """Mount the report routes; `run_query` runs read-only SQL on the gateway's store."""
    app[_RUN_QUERY] = run_query
    app.router.add_get("/logs/reports", _catalog)
    app.router.add_get("/logs/report/{name}", _report)


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


async def _catalog(_request: web.Request) -> web.Response:
    return _json(
        [
            {
                "name": r.name,
                "title": r.title,
                "description": r.description,
                "filters": list(r.filters),
                "needs_request_id": r.needs_request_id,
                "over_time": r.over_time,
            }
            for r in REPORTS.values()
        ]
    )


async def _report(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in REPORTS:
        return _json({"error": f'unknown report "{name}"; reports: {", ".join(REPORTS)}'}, 404)
    query = request.query
    try:
        limit = int(query["limit"]) if "limit" in query else None
    except ValueError:
        return _json({"error": f'limit: expected an integer, got "{query["limit"]}"'}, 400)
    options = ReportOptions(
        since=query.get("since"),
        start=query.get("from"),
        end=query.get("to"),
        route=query.get("route"),
        consumer=query.get("consumer"),
        request_id=query.get("request_id"),
        limit=limit,
    )
    try:
        prepared = prepare(name, options)
    except ReportError as exc:
        return _json({"error": str(exc)}, 400)
    try:
        result = await request.app[_RUN_QUERY](prepared.sql)
    except LogStoreError as exc:
        # The SQL is ours, so a failure is the store's (or a schema not yet migrated).
        return _json({"error": f"{name} report failed: {exc}"}, 500)
    return _json(
        {
            "report": name,
            "title": prepared.report.title,
            "window": {"from": iso_utc(prepared.window.start), "to": iso_utc(prepared.window.end)},
            "bucket_s": prepared.bucket_s,
            "columns": result.columns,
            "rows": result.rows,
        }
    )
