"""Plugin registry: plugin name (as written under `routes[].plugins`) -> implementation.

Today every plugin is *built in*: it runs inside the Rust core, and Python's part is
its config schema, its cross-field checks and the fragment it adds to the core
config. Plugins written in Python (with request phases) will register here too, as
another kind next to `BuiltinPlugin`; lookups by name and config validation stay the
same for both, only compilation differs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from pygate.config.paths import FieldPath
    from pygate.config.schema import GatewayConfig, Route


@dataclass(frozen=True, slots=True)
class RouteContext:
    """What a plugin's checks may look at besides its own config."""

    config: GatewayConfig
    route: Route
    path: FieldPath  # of the plugin's config, e.g. ("routes", 0, "plugins", "key-auth")


# A check yields (path relative to the plugin config, message) for each problem.
PluginCheck = Callable[[Any, RouteContext], Iterable[tuple["FieldPath", str]]]


def _no_checks(_config: Any, _context: RouteContext) -> Iterable[tuple[FieldPath, str]]:
    return ()


@dataclass(frozen=True, slots=True)
class BuiltinPlugin:
    """A plugin implemented by the Rust core."""

    name: str
    schema: type[msgspec.Struct]
    core_field: str  # key of this plugin's object in a core route config
    to_core: Callable[[Any], dict[str, Any]]
    check: PluginCheck = _no_checks


_REGISTRY: dict[str, BuiltinPlugin] = {}


def register(plugin: BuiltinPlugin) -> BuiltinPlugin:
    if plugin.name in _REGISTRY:
        raise ValueError(f"plugin {plugin.name!r} is already registered")
    _REGISTRY[plugin.name] = plugin
    return plugin


def get_plugin(name: str) -> BuiltinPlugin | None:
    _load_builtins()
    return _REGISTRY.get(name)


def plugin_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def builtin_plugins() -> list[BuiltinPlugin]:
    _load_builtins()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def _load_builtins() -> None:
    # Imported lazily: the plugin modules import this one to register themselves.
    from pygate.plugins import cors, ip_restriction, key_auth, rate_limit  # noqa: F401
