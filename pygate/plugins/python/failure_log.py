"""Plugin failures in the gateway log, without letting a failing plugin flood it.

A plugin that raises on every request under load would otherwise write thousands of
tracebacks a second, and formatting them would cost more than serving. The first
failure of a (plugin, route, kind) is logged in full; after that at most one a second,
with the count of those left out in between.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger("pygate.plugins")

INTERVAL_S = 1.0


class FailureLog:
    def __init__(self) -> None:
        # (plugin, route, kind) -> [last logged at (monotonic), failures left out since]
        self._seen: dict[tuple[str, str | None, str], list[float]] = {}

    def _admit(self, key: tuple[str, str | None, str]) -> tuple[bool, int]:
        now = time.monotonic()
        entry = self._seen.get(key)
        if entry is None:
            if len(self._seen) > 10_000:  # many routes x plugins: start over, stay small
                self._seen.clear()
            self._seen[key] = [now, 0]
            return True, 0
        if now - entry[0] >= INTERVAL_S:
            left_out = int(entry[1])
            entry[0], entry[1] = now, 0
            return True, left_out
        entry[1] += 1
        return False, 0

    def failed(
        self, name: str, route: str | None, request_id: str | None, exc: BaseException
    ) -> None:
        admitted, left_out = self._admit((name, route, "failed"))
        if admitted:
            log.error(
                "plugin %s failed on route %s (request %s)%s",
                name,
                route,
                request_id,
                _left_out(left_out),
                exc_info=exc,
            )

    def timed_out(
        self, name: str, route: str | None, request_id: str | None, seconds: float, phase: str
    ) -> None:
        admitted, left_out = self._admit((name, route, "timeout"))
        if admitted:
            log.error(
                "plugin %s timed out after %gs on route %s (request %s, %s phase)%s",
                name,
                seconds,
                route,
                request_id,
                phase,
                _left_out(left_out),
            )


def _left_out(count: int) -> str:
    return f" [{count} more like it in the last seconds not logged]" if count else ""
