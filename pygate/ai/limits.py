"""Token-per-minute limits and cost budgets, per consumer and per alias.

Checked before a call (a call over a limit gets 429 and never reaches a provider: with a
tokens-per-minute limit, a call whose prompt does not fit in what is left of the minute
too, its prompt counted with the model's tokenizer) and charged after it with the real
tokens and cost. Tokens per minute is a sliding
60-second window; budgets run per UTC day and per UTC month. At start the counters
are seeded from pygate.ai_calls, so a restart does not reset a budget.

With `cluster.redis` the usage that decides is the cluster's (shared_usage.py): every
node reads and charges the same counters in Redis. The node's own counters are kept as
well; they decide while Redis is unreachable under `on_redis_down: fail_open`.
"""

from __future__ import annotations

import time
from collections import deque
from datetime import UTC, datetime, timedelta

from pygate.ai.errors import AiError
from pygate.ai.shared_usage import SharedUsage, SharedUsageDown
from pygate.config.ai_schema import Limit

WINDOW_S = 60.0


def _period_start(now: datetime, period: str) -> datetime:
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if period == "day" else day.replace(day=1)


def _period_end(now: datetime, period: str) -> datetime:
    start = _period_start(now, period)
    if period == "day":
        return start + timedelta(days=1)
    return (start + timedelta(days=32)).replace(day=1)


class _Counter:
    def __init__(self) -> None:
        self.tokens: deque[tuple[float, int]] = deque()
        self.cost: dict[str, tuple[datetime, float]] = {}  # period -> (start, spent)

    def tokens_in_window(self, now: float) -> int:
        while self.tokens and self.tokens[0][0] <= now - WINDOW_S:
            self.tokens.popleft()
        return sum(n for _, n in self.tokens)

    def spent(self, period: str, now: datetime) -> float:
        start, spent = self.cost.get(period, (None, 0.0))
        return spent if start == _period_start(now, period) else 0.0

    def charge(self, tokens: int, cost: float, mono: float, now: datetime) -> None:
        if tokens:
            self.tokens.append((mono, tokens))
        for period in ("day", "month"):
            self.cost[period] = (_period_start(now, period), self.spent(period, now) + cost)


class Limits:
    def __init__(self, limits: list[Limit]) -> None:
        self._limits: dict[tuple[str, str], Limit] = {}
        for limit in limits:
            if limit.consumer is not None:
                self._limits[("consumer", limit.consumer)] = limit
            if limit.alias is not None:
                self._limits[("alias", limit.alias)] = limit
        self._counters: dict[tuple[str, str], _Counter] = {}
        self.shared: SharedUsage | None = None

    def reconfigured(self, limits: list[Limit]) -> Limits:
        """The same usage so far under new limits (a reload must not reset budgets)."""
        new = Limits(limits)
        new._counters = self._counters
        new.shared = self.shared
        return new

    def limits_tokens(self, consumer: str, alias: str) -> bool:
        """Whether a tokens-per-minute limit applies (only then is the prompt counted)."""
        keys = self._keys(consumer, alias)
        return any(self._limits[k].tokens_per_minute is not None for k in keys)

    async def check_shared(self, consumer: str, alias: str, prompt: int = 0) -> dict[str, str]:
        """`check`, on the cluster's usage when `cluster.redis` is set."""
        if self.shared is None:
            return self.check(consumer, alias, prompt=prompt)
        readings: dict[tuple[str, str], tuple[int, float, float, float]] = {}
        try:
            for key in self._keys(consumer, alias):
                readings[key] = await self.shared.usage(key)
        except SharedUsageDown:
            if self.shared.policy == "fail_closed":
                raise AiError(
                    503,
                    "limits_unavailable",
                    "the cluster's Redis, which holds the shared AI limits, is unreachable "
                    "(cluster.on_redis_down: fail_closed); retry shortly",
                    {"Retry-After": "1"},
                ) from None
            return self.check(consumer, alias, prompt=prompt)
        return self.check(consumer, alias, readings, prompt)

    def _keys(self, consumer: str, alias: str) -> list[tuple[str, str]]:
        keys = [("consumer", consumer), ("alias", alias)]
        return [k for k in keys if k in self._limits]

    def _counter(self, key: tuple[str, str]) -> _Counter:
        return self._counters.setdefault(key, _Counter())

    def check(
        self,
        consumer: str,
        alias: str,
        shared: dict[tuple[str, str], tuple[int, float, float, float]] | None = None,
        prompt: int = 0,
    ) -> dict[str, str]:
        """Raise AiError(429) when a limit is used up, or the call's `prompt` tokens do not
        fit in what is left of a tokens-per-minute limit; else the headers to answer with.
        `shared`: the cluster's (tokens, age of the oldest, day, month) per key."""
        headers: dict[str, str] = {}
        mono, now = time.monotonic(), datetime.now(UTC)
        for key in self._keys(consumer, alias):
            limit, counter = self._limits[key], self._counter(key)
            reading = shared.get(key) if shared is not None else None
            who = f"{key[0]} {key[1]!r}"
            if limit.tokens_per_minute is not None:
                if reading is not None:
                    used = reading[0]
                    reset = WINDOW_S - reading[1] if used else 0.0
                else:
                    used = counter.tokens_in_window(mono)
                    reset = WINDOW_S - (mono - counter.tokens[0][0]) if counter.tokens else 0.0
                left = max(limit.tokens_per_minute - used, 0)
                headers["X-RateLimit-Limit-Tokens"] = str(limit.tokens_per_minute)
                headers["X-RateLimit-Remaining-Tokens"] = str(left)
                headers["X-RateLimit-Reset-Tokens"] = f"{max(reset, 0):.0f}s"
                if prompt > limit.tokens_per_minute:
                    # No wait makes it fit: say so, and tell the SDKs not to retry.
                    message = (
                        f"the prompt's {prompt} tokens are over the token limit of {who}: "
                        f"{limit.tokens_per_minute} tokens per minute"
                    )
                    headers["x-should-retry"] = "false"
                    raise AiError(429, "token_limit_exceeded", message, headers)
                if left == 0 or prompt > left:
                    headers["Retry-After"] = str(max(int(reset) + 1, 1))
                    message = (
                        f"token limit of {who} reached: {used} of "
                        f"{limit.tokens_per_minute} tokens per minute used"
                    )
                    if left:
                        message += f", the prompt needs {prompt}"
                    raise AiError(429, "token_limit_exceeded", message, headers)
            for period, budget in (("day", limit.cost_per_day), ("month", limit.cost_per_month)):
                if budget is None:
                    continue
                if reading is not None:
                    spent = reading[2] if period == "day" else reading[3]
                else:
                    spent = counter.spent(period, now)
                headers[f"X-Budget-Limit-{period.title()}-USD"] = f"{budget:.6f}"
                headers[f"X-Budget-Remaining-{period.title()}-USD"] = (
                    f"{max(budget - spent, 0):.6f}"
                )
                if spent >= budget:
                    wait = (_period_end(now, period) - now).total_seconds()
                    headers["Retry-After"] = str(max(int(wait) + 1, 1))
                    message = (
                        f"cost budget of {who} for this {period} is spent: "
                        f"${spent:.6f} of ${budget:.6f}"
                    )
                    raise AiError(429, "budget_exceeded", message, headers)
        return headers

    def charge(self, consumer: str, alias: str, tokens: int, cost: float) -> None:
        mono, now = time.monotonic(), datetime.now(UTC)
        for key in self._keys(consumer, alias):
            self._counter(key).charge(tokens, cost, mono, now)
            if self.shared is not None and (tokens or cost):
                self.shared.charge(key, tokens, cost)

    # ----- seeding from the store ----------------------------------------------------------
    def seed_sql(self) -> str | None:
        if not self._limits:
            return None
        return (
            "SELECT consumer, alias, toStartOfMonth(ts) = toStartOfMonth(now()) AS this_month, "
            "toDate(ts) = today() AS today, ts > now() - INTERVAL 1 MINUTE AS last_minute, "
            "sum(prompt_tokens + completion_tokens) AS tokens, sum(cost_usd) AS cost "
            "FROM pygate.ai_calls WHERE ts >= toStartOfMonth(now()) "
            "GROUP BY consumer, alias, this_month, today, last_minute"
        )

    def seed(self, rows: list[list]) -> None:
        mono, now = time.monotonic(), datetime.now(UTC)
        for consumer, alias, this_month, today, last_minute, tokens, cost in rows:
            for key in self._keys(consumer, alias):
                counter = self._counter(key)
                if last_minute:
                    counter.tokens.append((mono, int(tokens)))
                for period, inside in (("day", today), ("month", this_month)):
                    if inside:
                        spent = counter.spent(period, now) + float(cost)
                        counter.cost[period] = (_period_start(now, period), spent)
