"""Canned reports over the call logs: one parameterised SQL query per report module.

Used by `pygate logs report`, the admin listener (`GET /logs/report/{name}`) and the
dashboard. The SQL reads the per-minute rollups where it can, so reports over months
stay fast, and runs unchanged on chDB and on a ClickHouse server.
"""

from pygate.reports.catalog import REPORTS
from pygate.reports.prepare import PreparedReport, ReportError, ReportOptions, prepare
from pygate.reports.report import Report

__all__ = ["REPORTS", "PreparedReport", "Report", "ReportError", "ReportOptions", "prepare"]
