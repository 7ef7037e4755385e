"""Checks on the `ai:` section that span fields (run with the other semantic checks)."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from pygate.ai.templates import template_problems
from pygate.config.paths import names_uncertain

if TYPE_CHECKING:
    from pygate.config.schema import GatewayConfig

Finding = tuple[tuple, str]


def ai_problems(config: GatewayConfig, invalid: Collection[tuple] = ()) -> Iterator[Finding]:
    """`invalid`: paths that failed the schema (they hold stand-ins, see config.convert)."""
    settings = config.ai
    if settings is None:
        return
    providers = {p.name for p in settings.providers}
    aliases = {a.name for a in settings.models}
    # A provider or alias whose name failed may be the one a reference means.
    unsure = names_uncertain(invalid, ("ai", "providers")) or names_uncertain(
        invalid, ("ai", "models")
    )

    def resolvable(name: str, allow_alias: bool) -> bool:
        if unsure:
            return True
        if allow_alias and name in aliases:
            return True
        provider, sep, model = name.partition("/")
        return bool(sep and model) and provider in providers

    seen: set[str] = set()
    for index, provider in enumerate(settings.providers):
        if provider.name in seen:
            yield ("ai", "providers", index, "name"), f"duplicate provider {provider.name!r}"
        seen.add(provider.name)
        if not provider.keys and provider.kind != "openai_compatible":
            yield ("ai", "providers", index, "keys"), f"{provider.kind} needs at least one key"
    for index, alias in enumerate(settings.models):
        if "/" in alias.name:
            yield ("ai", "models", index, "name"), "an alias may not contain '/'"
        for d_index, deployment in enumerate(alias.deployments):
            if not resolvable(deployment.model, allow_alias=False):
                yield (
                    ("ai", "models", index, "deployments", d_index, "model"),
                    f"expected provider/model with a provider from ai.providers, got "
                    f"{deployment.model!r}",
                )
        for f_index, fallback in enumerate(alias.fallbacks):
            if not resolvable(fallback, allow_alias=True) or fallback == alias.name:
                yield (
                    ("ai", "models", index, "fallbacks", f_index),
                    f"expected another alias or provider/model, got {fallback!r}",
                )
    for index, limit in enumerate(settings.limits):
        if (limit.consumer is None) == (limit.alias is None):
            yield ("ai", "limits", index), "set exactly one of consumer or alias"
    for index, template in enumerate(settings.templates):
        if not resolvable(template.model, allow_alias=True):
            yield ("ai", "templates", index, "model"), f"unknown model {template.model!r}"
    yield from template_problems(settings)
    if settings.require_key and not config.consumers:
        yield ("ai", "require_key"), "key-auth on the AI routes needs at least one consumer"
