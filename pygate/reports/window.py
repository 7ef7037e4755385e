"""Report windows: `--since 1h` or `--from T --to T`, and the bucket size that suits them.

Times are instants. Input without a UTC offset is read as UTC, because call records
are stored as UTC instants and reports print UTC: one clock for everything an
analyst compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}

# Over-time reports aim for at most this many points: enough for a readable chart,
# few enough for a terminal table.
MAX_BUCKETS = 180
# Candidate bucket sizes, smallest first. One minute is the finest the rollups keep.
BUCKET_SECONDS = (60, 300, 900, 3600, 6 * 3600, 86400)


class WindowError(ValueError):
    """A window option the user got wrong; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime  # inclusive, timezone-aware
    end: datetime  # exclusive, timezone-aware

    @property
    def seconds(self) -> float:
        return (self.end - self.start).total_seconds()

    def bucket_seconds(self) -> int:
        """The smallest candidate bucket that keeps the window within MAX_BUCKETS points."""
        for size in BUCKET_SECONDS:
            if self.seconds / size <= MAX_BUCKETS:
                return size
        return BUCKET_SECONDS[-1]

    def describe(self) -> str:
        return f"{iso_utc(self.start)} .. {iso_utc(self.end)}"

    def whole_minutes(self) -> Window:
        """The whole minutes this window touches: what a per-minute rollup counts."""
        return Window(floor_minute(self.start), ceil_minute(self.end))

    def inner_minutes(self) -> Window:
        """The whole minutes inside this window (empty, end <= start, if there are none)."""
        return Window(ceil_minute(self.start), floor_minute(self.end))


def floor_minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def ceil_minute(moment: datetime) -> datetime:
    floor = floor_minute(moment)
    return floor if floor == moment else floor + timedelta(minutes=1)


def parse_duration(text: str, option: str = "--since") -> timedelta:
    match = _DURATION.match(text)
    if match is None:
        raise WindowError(
            f'{option}: expected a duration such as "90s", "15m", "1h", "7d" or "2w", got "{text}"'
        )
    seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds <= 0:
        raise WindowError(f'{option}: the duration must be more than zero, got "{text}"')
    return timedelta(seconds=seconds)


def parse_time(text: str, option: str) -> datetime:
    """ISO 8601 (`2026-01-31T12:00`, `2026-01-31 12:00:05Z`, `...+02:00`) or unix seconds."""
    value = text.strip()
    try:
        if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
            return datetime.fromtimestamp(float(value), UTC)
        parsed = datetime.fromisoformat(value)
    except (ValueError, OverflowError):
        raise WindowError(
            f'{option}: expected a time such as "2026-01-31T12:00:00Z", '
            f'"2026-01-31 12:00" (UTC) or unix seconds, got "{text}"'
        ) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def resolve_window(
    *,
    since: str | None = None,
    start: str | None = None,
    end: str | None = None,
    now: datetime | None = None,
    default_since: str = "1h",
) -> Window:
    """The window from the user's options; `--since` and `--from/--to` exclude each other.

    `--from` alone runs until now; `--to` alone needs `--since` semantics and is refused,
    because "everything before T" over months of data is rarely what anyone meant.
    """
    now = now or datetime.now(UTC)
    if since is not None and (start is not None or end is not None):
        raise WindowError("use either --since or --from/--to, not both")
    if end is not None and start is None:
        raise WindowError("--to needs --from (or use --since for a window ending now)")
    if start is None:
        return Window(now - parse_duration(since or default_since), now)
    window = Window(parse_time(start, "--from"), parse_time(end, "--to") if end else now)
    if window.end <= window.start:
        raise WindowError(
            f"--from must be before --to, got {iso_utc(window.start)} .. {iso_utc(window.end)}"
        )
    return window


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
