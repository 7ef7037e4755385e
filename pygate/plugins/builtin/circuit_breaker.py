"""circuit-breaker: stop sending a route's requests to an upstream that keeps failing.

    circuit-breaker:
      failures: 5           # consecutive failures that open the circuit
      failure_ratio: 0.5    # optional: also open when this share of the window failed...
      window: 30s
      min_requests: 10      # ...once the window holds at least this many outcomes
      cooldown: 10s         # open this long, then let one probe through

A failure is an upstream response with a 5xx status (seen in the response phase) or an
upstream error the core answered itself (502 upstream_unavailable, 504 upstream_timeout:
no response phase runs for those, so they are seen in the log phase, shortly after).

While open, requests get 503 circuit_open with Retry-After and never reach the upstream.
After the cooldown the circuit is half-open: the next request is the probe and the others
are refused until it ends; a successful probe closes the circuit, a failed one opens it
again for another cooldown. A probe whose outcome never arrives (refused further down the
route's plugins, say) is replaced by a new one after another cooldown.
"""

from __future__ import annotations

import math
import sys
import time
from collections import deque
from collections.abc import Iterator
from typing import Annotated, Any

import msgspec

from pygate.config.units import Duration
from pygate.plugins.python import Plugin, Refuse, Request, Response
from pygate.plugins.registry import register_python

# Core error kinds that mean "the upstream failed"; they skip the response phase.
UPSTREAM_ERRORS = frozenset({"upstream_unavailable", "upstream_timeout"})


class CircuitBreakerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    failures: Annotated[int, msgspec.Meta(ge=1)] = 5
    failure_ratio: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    window: Duration = Duration(30_000)
    min_requests: Annotated[int, msgspec.Meta(ge=1)] = 10
    cooldown: Duration = Duration(10_000)


def check(config: CircuitBreakerConfig, _context: Any) -> Iterator[tuple[tuple, str]]:
    if config.cooldown <= 0:
        yield ("cooldown",), "expected a duration greater than 0"
    if config.failure_ratio is not None and config.window <= 0:
        yield ("window",), "expected a duration greater than 0"


CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"


class Breaker:
    """The state of one route's circuit. Times are time.monotonic() seconds."""

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self.config = config
        self.cooldown = config.cooldown / 1000
        self.state = CLOSED
        self.consecutive = 0
        self.outcomes: deque[tuple[float, bool]] = deque()  # (when, failed), within window
        self.opened_at = 0.0
        self.probe: tuple[str, float] | None = None  # (request id, started)

    def admit(self, request_id: str, now: float) -> float | None:
        """None to let the request through, else the seconds until a retry makes sense."""
        if self.state == CLOSED:
            return None
        if self.state == OPEN:
            reopen_at = self.opened_at + self.cooldown
            if now < reopen_at:
                return reopen_at - now
            self.state = HALF_OPEN
        if self.probe is None or now - self.probe[1] >= self.cooldown:
            self.probe = (request_id, now)
            return None
        return self.probe[1] + self.cooldown - now

    def observe(self, request_id: str, failed: bool, now: float) -> str | None:
        """Count one outcome; returns the new state when it changed."""
        if self.state == HALF_OPEN:
            if self.probe is None or self.probe[0] != request_id:
                return None  # a request let through before the circuit opened
            self.probe = None
            return self._open(now) if failed else self._close()
        if self.state == OPEN:
            return None
        self.consecutive = self.consecutive + 1 if failed else 0
        if self.consecutive >= self.config.failures:
            return self._open(now)
        if self.config.failure_ratio is not None:
            self.outcomes.append((now, failed))
            horizon = now - self.config.window / 1000
            while self.outcomes and self.outcomes[0][0] < horizon:
                self.outcomes.popleft()
            count = len(self.outcomes)
            failed_count = sum(1 for _, f in self.outcomes if f)
            if (
                count >= self.config.min_requests
                and failed_count / count >= self.config.failure_ratio
            ):
                return self._open(now)
        return None

    def _open(self, now: float) -> str:
        self.state, self.opened_at = OPEN, now
        return OPEN

    def _close(self) -> str:
        self.state, self.consecutive = CLOSED, 0
        self.outcomes.clear()
        return CLOSED


class CircuitBreaker(Plugin):
    Config = CircuitBreakerConfig

    def __init__(self, config: CircuitBreakerConfig) -> None:
        super().__init__(config)
        self.breakers: dict[str, Breaker] = {}  # by route

    def breaker(self, route: str) -> Breaker:
        found = self.breakers.get(route)
        if found is None:
            found = self.breakers[route] = Breaker(self.config)
        return found

    async def access(self, request: Request) -> Response | None:
        wait = self.breaker(request.route).admit(request.request_id, time.monotonic())
        if wait is None:
            return None
        retry_after = str(max(1, math.ceil(wait)))
        raise Refuse(
            503,
            "circuit_open",
            f"the upstream of route {request.route} is failing; retry in {retry_after} s",
            headers=[("Retry-After", retry_after)],
        )

    async def response(self, request: Request, response: Response) -> None:
        self._observe(request.route, request.request_id, response.status >= 500)

    async def log(self, record: dict) -> None:
        if record.get("error_kind") in UPSTREAM_ERRORS:
            self._observe(record["route"], record["request_id"], True)

    def _observe(self, route: str, request_id: str, failed: bool) -> None:
        changed = self.breaker(route).observe(request_id, failed, time.monotonic())
        if changed is not None:
            # One line per transition, so an operator can see when and why traffic stopped.
            print(f"pygate: circuit-breaker on route {route} is now {changed}", file=sys.stderr)


PLUGIN = register_python("circuit-breaker", CircuitBreaker, check=check)
