"""Each route's Python plugins, instantiated with their config, in config order.

Instances are kept across reloads when a route's config for a plugin is unchanged, so
state a plugin holds (a cache, a breaker's counts) survives reloads that touch other
routes or other settings.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pygate.config.errors import ConfigError
from pygate.plugins.registry import PythonPlugin, get_plugin

# (plugin name as written in config, bound phase method)
Step = tuple[str, Callable[..., Any]]


@dataclass(slots=True)
class RouteChain:
    access: tuple[Step, ...] = ()
    response: tuple[Step, ...] = ()
    log: tuple[Step, ...] = ()


@dataclass(slots=True)
class Chains:
    routes: dict[str, RouteChain] = field(default_factory=dict)
    timeout_s: float = 5.0
    # (route, plugin name) -> (config, instance): what a reload may reuse
    instances: dict[tuple[str, str], tuple[Any, Any]] = field(default_factory=dict)


def build_chains(loaded: Any, previous: Chains | None = None) -> Chains:
    """Instantiate the Python plugins of a LoadedConfig; ConfigError if one cannot start."""
    config = loaded.config
    old = previous.instances if previous is not None else {}
    chains = Chains(timeout_s=int(config.plugin_timeout) / 1000)
    problems = []
    for index, route in enumerate(config.routes):
        steps: dict[str, list[Step]] = {"access": [], "response": [], "log": []}
        for name, plugin_config in route.plugins.items():
            plugin = get_plugin(name)
            if not isinstance(plugin, PythonPlugin):
                continue
            key = (route.name, name)
            kept = old.get(key)
            if kept is not None and kept[0] == plugin_config:
                instance = kept[1]
            else:
                try:
                    instance = plugin.factory(plugin_config)
                except Exception as exc:
                    path = ("routes", index, "plugins", name)
                    problems.append(
                        loaded.source.problem(
                            path, f"the plugin failed to start: {type(exc).__name__}: {exc}"
                        )
                    )
                    continue
            chains.instances[key] = (plugin_config, instance)
            for phase in plugin.phases:
                steps[phase].append((name, getattr(instance, phase)))
        if any(steps.values()):
            chains.routes[route.name] = RouteChain(
                tuple(steps["access"]), tuple(steps["response"]), tuple(steps["log"])
            )
    if problems:
        raise ConfigError(problems)
    return chains
