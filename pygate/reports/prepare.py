"""Turn a report name and the user's options into SQL ready to run, or a clear error.

Shared by `pygate logs report` and the admin listener's `/logs/report/{name}`, so
both accept the same options and refuse the same mistakes with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pygate.reports.catalog import REPORTS
from pygate.reports.params import bind
from pygate.reports.report import Report
from pygate.reports.window import Window, WindowError, resolve_window

MAX_LIMIT = 10_000
# A lookup over "all retained data" still needs bounds; records from a client clock a
# little ahead must not be missed.
_ALL_TIME_START = datetime(1970, 1, 1, tzinfo=UTC)
_CLOCK_SKEW_ALLOWANCE = timedelta(days=1)


class ReportError(ValueError):
    """The user asked for something a report cannot do; the message says what instead."""


@dataclass(frozen=True, slots=True)
class ReportOptions:
    since: str | None = None
    start: str | None = None  # --from
    end: str | None = None  # --to
    route: str | None = None
    consumer: str | None = None
    request_id: str | None = None
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class PreparedReport:
    report: Report
    window: Window
    bucket_s: int | None
    sql: str
    values: dict[str, object]  # the parameters bound into `sql` (and more)

    def describe(self) -> str:
        span = "all retained data" if self.window.start == _ALL_TIME_START else None
        text = f"{self.report.title}, {span or self.window.describe() + ' (UTC)'}"
        if self.bucket_s:
            text += f", per {_bucket_label(self.bucket_s)}"
        return text


def prepare(name: str, options: ReportOptions, now: datetime | None = None) -> PreparedReport:
    report = REPORTS.get(name)
    if report is None:
        raise ReportError(f'unknown report "{name}"; reports: {", ".join(REPORTS)}')
    _check_filters(report, options)
    window = _window(report, options, now or datetime.now(UTC))
    if report.whole_minutes:
        window = window.whole_minutes()
    bucket_s = window.bucket_seconds() if report.over_time else None
    inner = window.inner_minutes()
    values = {
        "from": window.start,
        "to": window.end,
        # The whole minutes inside the window: read from the rollups; the rest of the
        # window (the partial minutes at its edges) from the raw rows.
        "inner_from": inner.start,
        "inner_to": inner.end,
        "bucket_s": bucket_s,
        "route": options.route,
        "consumer": options.consumer,
        "request_id": options.request_id,
        "limit": _limit(report, options.limit),
    }
    return PreparedReport(report, window, bucket_s, bind(report.sql, values).strip(), values)


def _check_filters(report: Report, options: ReportOptions) -> None:
    given = [f for f in ("route", "consumer") if getattr(options, f) is not None]
    for name in given:
        if name not in report.filters:
            accepted = " or ".join(f"--{f}" for f in report.filters) or "no filters"
            raise ReportError(
                f"the {report.name} report does not take --{name} (it takes {accepted})"
            )
    if report.filters_exclusive and len(given) > 1:
        raise ReportError(
            f"the {report.name} report reads per-route or per-consumer rollups: "
            "give --route or --consumer, not both"
        )
    if report.needs_request_id and not options.request_id:
        raise ReportError(f"the {report.name} report needs --request-id ID")
    if options.request_id is not None and not report.needs_request_id:
        raise ReportError("--request-id belongs to the request report: pygate logs report request")


def _window(report: Report, options: ReportOptions, now: datetime) -> Window:
    no_window = options.since is None and options.start is None and options.end is None
    if no_window and report.default_since == "all":
        return Window(_ALL_TIME_START, now + _CLOCK_SKEW_ALLOWANCE)
    try:
        return resolve_window(
            since=options.since,
            start=options.start,
            end=options.end,
            now=now,
            default_since=report.default_since,
        )
    except WindowError as exc:
        raise ReportError(str(exc)) from None


def _limit(report: Report, limit: int | None) -> int | None:
    if limit is None:
        return report.default_limit
    if not 1 <= limit <= MAX_LIMIT:
        raise ReportError(f"--limit: expected 1..{MAX_LIMIT}, got {limit}")
    return limit


def _bucket_label(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return unit if count == 1 else f"{count} {unit}s"
    return f"{seconds} s"
