"""What a canned report is: one parameterised SQL query plus what it accepts."""

from __future__ import annotations

from dataclasses import dataclass

from pygate.reports.params import placeholders

# Filters a report may accept; each maps to a `{name:Nullable(String)}` parameter.
FILTERS = ("route", "consumer")


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    title: str
    description: str
    sql: str
    # Reports over a rollup can filter only by that rollup's key; reports over the raw
    # table accept both filters together.
    filters: tuple[str, ...] = ()
    filters_exclusive: bool = False
    default_limit: int | None = None
    needs_request_id: bool = False
    # "all" for a lookup that should search every retained day unless told otherwise.
    default_since: str = "1h"
    # Print one field per line in tables: for a single wide record.
    vertical: bool = False
    # Part of `pygate logs report` without a REPORT argument (the HTTP call overview).
    in_overview: bool = True
    # Counts whole minutes of a rollup only: the window is widened to the minutes it
    # touches, so the window printed is the one counted. (Reports that combine rollups
    # with raw rows at the edges, `{inner_from}`/`{inner_to}`, count the exact window.)
    whole_minutes: bool = False

    @property
    def parameters(self) -> dict[str, str]:
        return placeholders(self.sql)

    @property
    def over_time(self) -> bool:
        return "bucket_s" in self.parameters
