"""traffic-split: send some requests of a route to another configured upstream.

    traffic-split:
      rules:                       # first match wins
        - headers: {x-canary: "1"} # every listed header must have one of the values
          upstream: canary
        - headers: {x-beta: ["yes", "true"]}
          upstream: beta
      percent:                     # requests no rule matched
        - {upstream: canary, percent: 10}
      # the remaining 90% (100 minus the listed percents) go to the route's own upstream

Percentages are kept exactly over every run of 100 requests rather than drawn at random:
the choice is a smooth weighted round robin (nginx's), so a 10% canary gets every tenth
request, spread evenly, and small samples are not lopsided.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import msgspec

from pygate.plugins.python import Plugin, Request, Response
from pygate.plugins.registry import RouteContext, register_python


class HeaderRule(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: dict[str, str | list[str]]
    upstream: str


class Share(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    upstream: str
    percent: Annotated[float, msgspec.Meta(ge=0, le=100)]


class TrafficSplitConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    rules: list[HeaderRule] = []
    percent: list[Share] = []


def check(config: TrafficSplitConfig, context: RouteContext) -> Iterator[tuple[tuple, str]]:
    if not config.rules and not config.percent:
        yield (), "expected rules, percent or both"
    known = [u.name for u in context.config.upstreams]
    defined = ", ".join(known) if known else "none are defined"
    for index, rule in enumerate(config.rules):
        if not rule.headers:
            yield ("rules", index, "headers"), "expected at least one header to match"
        if rule.upstream not in known:
            yield (
                ("rules", index, "upstream"),
                f'unknown upstream "{rule.upstream}" (defined upstreams: {defined})',
            )
    for index, share in enumerate(config.percent):
        if share.upstream not in known:
            yield (
                ("percent", index, "upstream"),
                f'unknown upstream "{share.upstream}" (defined upstreams: {defined})',
            )
    total = sum(share.percent for share in config.percent)
    if total > 100:
        yield ("percent",), f"the percentages add up to {total:g}, more than 100"


class SmoothWeighted:
    """nginx's smooth weighted round robin: each pick goes to the entry whose running
    credit is highest, which then pays the total back. None stands for "no change"."""

    def __init__(self, weights: list[tuple[str | None, float]]) -> None:
        self.entries = [(name, weight) for name, weight in weights if weight > 0]
        self.total = sum(weight for _, weight in self.entries)
        self.credit = [0.0] * len(self.entries)

    def pick(self) -> str | None:
        if not self.entries:
            return None
        best = 0
        for i, (_, weight) in enumerate(self.entries):
            self.credit[i] += weight
            if self.credit[i] > self.credit[best]:
                best = i
        self.credit[best] -= self.total
        return self.entries[best][0]


def _rule_matches(rule: HeaderRule, headers: dict[str, list[str]]) -> bool:
    for name, wanted in rule.headers.items():
        values = headers.get(name.lower(), [])
        choices = [wanted] if isinstance(wanted, str) else wanted
        if not any(value in choices for value in values):
            return False
    return True


class TrafficSplitter:
    """The choice for one route: an upstream name, or None to keep the route's own."""

    def __init__(self, config: TrafficSplitConfig) -> None:
        self.rules = config.rules
        rest = 100.0 - sum(share.percent for share in config.percent)
        weights: list[tuple[str | None, float]] = [(s.upstream, s.percent) for s in config.percent]
        self.split = SmoothWeighted([*weights, (None, rest)]) if config.percent else None

    def choose(self, header_pairs: list[tuple[str, str]]) -> str | None:
        if self.rules:
            headers: dict[str, list[str]] = {}
            for name, value in header_pairs:
                headers.setdefault(name.lower(), []).append(value)
            for rule in self.rules:
                if _rule_matches(rule, headers):
                    return rule.upstream
        return self.split.pick() if self.split is not None else None


class TrafficSplit(Plugin):
    Config = TrafficSplitConfig

    def __init__(self, config: TrafficSplitConfig) -> None:
        super().__init__(config)
        self.splitter = TrafficSplitter(config)

    async def access(self, request: Request) -> Response | None:
        upstream = self.splitter.choose(list(request.headers.items()))
        if upstream is not None:
            request.upstream = upstream
        return None


PLUGIN = register_python("traffic-split", TrafficSplit, check=check)
