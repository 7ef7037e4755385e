"""The canned reports, in the order `pygate logs report` and the dashboard show them."""

from __future__ import annotations

from pygate.reports import (
    ai_models,
    ai_usage,
    consumers,
    errors,
    latency,
    rate_limits,
    request,
    slowest,
    traffic,
)
from pygate.reports.report import Report

REPORTS: dict[str, Report] = {
    module.REPORT.name: module.REPORT
    for module in (
        traffic,
        latency,
        consumers,
        errors,
        rate_limits,
        slowest,
        request,
        ai_usage,
        ai_models,
    )
}
