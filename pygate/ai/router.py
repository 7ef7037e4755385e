"""Which provider and model serve a requested model name.

A name is an alias from `ai.models` (a group of deployments plus a fallback chain) or
`provider/model`. `plan()` returns the candidates in the order to try: one deployment
of the alias (weighted random, or the least busy), then each fallback in turn
(fallbacks that are aliases pick their own deployment the same way).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pygate.config.ai_schema import AiSettings, Alias, Provider


class UnknownModel(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Candidate:
    provider: Provider
    model: str  # the provider's model name
    label: str  # how the config names this choice: alias or provider/model

    @property
    def qualified(self) -> str:
        return f"{self.provider.name}/{self.model}"


class ModelRouter:
    def __init__(self, settings: AiSettings) -> None:
        self.providers = {p.name: p for p in settings.providers}
        self.aliases = {a.name: a for a in settings.models}
        self.in_flight: dict[str, int] = {}  # provider/model -> calls running now

    def known(self, name: str) -> bool:
        try:
            self._resolve(name)
        except UnknownModel:
            return False
        return True

    def plan(self, name: str) -> list[Candidate]:
        """Candidates for `name`, first choice first. Raises UnknownModel."""
        first = self._resolve(name)
        plan = [first]
        alias = self.aliases.get(name)
        for fallback in alias.fallbacks if alias else ():
            candidate = self._resolve(fallback)
            if candidate not in plan:
                plan.append(candidate)
        return plan

    def _resolve(self, name: str) -> Candidate:
        alias = self.aliases.get(name)
        if alias is not None:
            return self._pick(alias)
        provider_name, sep, model = name.partition("/")
        provider = self.providers.get(provider_name)
        if not sep or provider is None or not model:
            raise UnknownModel(name)
        return Candidate(provider, model, name)

    def _pick(self, alias: Alias) -> Candidate:
        choices = [self._resolve(d.model) for d in alias.deployments]
        if alias.balance == "least_busy":
            busiest_first = min(choices, key=lambda c: self.in_flight.get(c.qualified, 0))
            chosen = busiest_first
        else:
            weights = [d.weight for d in alias.deployments]
            chosen = random.choices(choices, weights)[0]
        return Candidate(chosen.provider, chosen.model, alias.name)

    def started(self, candidate: Candidate) -> None:
        key = candidate.qualified
        self.in_flight[key] = self.in_flight.get(key, 0) + 1

    def finished(self, candidate: Candidate) -> None:
        key = candidate.qualified
        self.in_flight[key] = max(self.in_flight.get(key, 1) - 1, 0)

    def model_names(self) -> list[str]:
        """What GET /v1/models lists: aliases, then every deployment's provider/model."""
        names = list(self.aliases)
        for alias in self.aliases.values():
            for deployment in alias.deployments:
                if deployment.model not in names:
                    names.append(deployment.model)
        return names
