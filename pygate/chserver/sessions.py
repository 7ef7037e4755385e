"""HTTP sessions (`session_id`): what a client's SET and USE leave behind.

ClickHouse keeps a session's current database and settings between requests that
carry the same `session_id`, until `session_timeout` seconds pass without use. Here
every HTTP session shares the one chDB session, so a session is just the state to
re-apply before each of its queries (see engine.py), never chDB state of its own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from pygate.chserver.errors import (
    INVALID_SESSION_TIMEOUT,
    SESSION_NOT_FOUND,
    ClickHouseError,
)

DEFAULT_TIMEOUT_S = 60.0  # ClickHouse's default_session_timeout
MAX_TIMEOUT_S = 3600.0  # ClickHouse's max_session_timeout
# A bound on memory: clickhouse-connect creates one session per client object.
MAX_SESSIONS = 10_000


@dataclass(slots=True)
class HttpSession:
    session_id: str
    user: str
    timeout_s: float
    expires_at: float
    database: str | None = None
    settings: dict[str, str] = field(default_factory=dict)  # name -> SQL literal

    def touch(self, now: float) -> None:
        self.expires_at = now + self.timeout_s


class SessionRegistry:
    def __init__(self, clock=time.monotonic) -> None:
        self._sessions: dict[tuple[str, str], HttpSession] = {}
        self._clock = clock

    def __len__(self) -> int:
        return len(self._sessions)

    def get(self, session_id: str, user: str, timeout: str | None, check: bool) -> HttpSession:
        """The session `session_id` of `user`, created unless `check` is set."""
        now = self._clock()
        self._expire(now)
        timeout_s = _parse_timeout(timeout)
        key = (user, session_id)
        session = self._sessions.get(key)
        if session is None:
            if check:
                raise ClickHouseError(
                    SESSION_NOT_FOUND, f"Session {session_id} not found or was expired"
                )
            if len(self._sessions) >= MAX_SESSIONS:
                oldest = min(self._sessions, key=lambda k: self._sessions[k].expires_at)
                del self._sessions[oldest]
            session = HttpSession(session_id, user, timeout_s or DEFAULT_TIMEOUT_S, now)
            self._sessions[key] = session
        elif timeout_s is not None:
            session.timeout_s = timeout_s
        session.touch(now)
        return session

    def _expire(self, now: float) -> None:
        expired = [key for key, s in self._sessions.items() if s.expires_at <= now]
        for key in expired:
            del self._sessions[key]


def _parse_timeout(raw: str | None) -> float | None:
    if raw is None or raw == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= MAX_TIMEOUT_S:
        raise ClickHouseError(
            INVALID_SESSION_TIMEOUT,
            f"Invalid session timeout: '{raw}' (expected 0 < seconds <= {MAX_TIMEOUT_S:g})",
        )
    return value
