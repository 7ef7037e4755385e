"""Checks on the `ai:` section that span fields (run with the other semantic checks).

Pure data checks: nothing here imports the AI runtime (pygate.ai), so checking a config
stays free of aiohttp and the log shipper (tests/test_imports.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

from pygate.config.ai_schema import TEMPLATE_PLACEHOLDER, AiSettings
from pygate.config.paths import names_uncertain
from pygate.config.providers import BY_KIND

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
        if not provider.keys and BY_KIND[provider.kind].needs_keys:
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
    if settings.require_key and not any(c.keys for c in config.consumers):
        yield (
            ("ai", "require_key"),
            ("key-auth on the AI routes needs at least one consumer with `keys`"),
        )


def template_problems(settings: AiSettings) -> list[Finding]:
    """Versions exist, split adds up to 100, placeholders are declared."""
    problems: list[Finding] = []
    for t_index, template in enumerate(settings.templates):
        path = ("ai", "templates", t_index)
        numbers = [v.version for v in template.versions]
        if len(set(numbers)) != len(numbers):
            problems.append(((*path, "versions"), "version numbers must be unique"))
        if template.active is not None and template.active not in numbers:
            problems.append(((*path, "active"), f"no version {template.active}"))
        if template.split:
            unknown = [n for n in template.split if n not in numbers]
            if unknown:
                problems.append(((*path, "split"), f"no version {unknown[0]}"))
            if sum(template.split.values()) != 100:
                problems.append(((*path, "split"), "percentages must add up to 100"))
        for v_index, version in enumerate(template.versions):
            text = version.prompt + (version.system or "")
            for name in TEMPLATE_PLACEHOLDER.findall(text):
                if name not in version.variables:
                    problems.append(
                        ((*path, "versions", v_index, "prompt"), f"{{{{{name}}}}} is not declared")
                    )
    return problems
