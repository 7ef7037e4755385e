"""Plugin registry: plugin name (as written under `routes[].plugins`) -> implementation.

Two kinds of plugins share one lookup and one config check (msgspec schema + `check`):

- `BuiltinPlugin`: runs inside the Rust core. Python's part is its config schema, its
  cross-field checks and the fragment `to_core` adds to the core route config.
- `PythonPlugin`: runs in Python on the asyncio loop, called by the core through
  `pygate.plugins.python.dispatch` in the phases it implements (access, response, log).

Built-in Python plugins register themselves by name from a module of this package,
listed in `BUILTIN_MODULES` (imported on the first lookup):

    from pygate.plugins.python import Plugin, Request, Response
    from pygate.plugins.registry import register_python

    class MockPlugin(Plugin):
        class Config(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
            status: int = 200
        async def access(self, request: Request) -> Response | None:
            return Response(self.config.status, body=b"mocked")

    PLUGIN = register_python("mock", MockPlugin, check=optional_check)

Any other name containing ":" is a module path, "package.module:Attribute", naming a
`Plugin` subclass or a plain `async def fn(request)` (an access plugin without config).
It is imported on first use (once per process: a reload picks up config changes, not
code changes) and `load_plugin` says why one cannot be loaded. The gateway imports it
with its own sys.path: put the plugin's directory on PYTHONPATH.
"""

from __future__ import annotations

import importlib
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
    base_dir: str = "."  # the config file's directory: relative paths are relative to it


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


@dataclass(frozen=True, slots=True)
class PythonPlugin:
    """A plugin run in Python by the dispatcher (built in, or from a module path)."""

    name: str
    schema: type[msgspec.Struct]
    # config (an instance of `schema`) -> object with the async phase methods below
    factory: Callable[[Any], Any]
    phases: frozenset[str]  # subset of {"access", "response", "log"}
    check: PluginCheck = _no_checks


AnyPlugin = BuiltinPlugin | PythonPlugin


class PluginLoadError(Exception):
    """A module-path plugin that cannot be imported or is not a plugin."""


_REGISTRY: dict[str, AnyPlugin] = {}
_MODULE_PLUGINS: dict[str, PythonPlugin] = {}


def register(plugin: AnyPlugin) -> AnyPlugin:
    if plugin.name in _REGISTRY:
        raise ValueError(f"plugin {plugin.name!r} is already registered")
    _REGISTRY[plugin.name] = plugin
    return plugin


def register_python(
    name: str, implementation: Any, *, check: PluginCheck | None = None
) -> PythonPlugin:
    """Register a built-in Python plugin: a `Plugin` subclass or an async function.

    The schema is the class's `Config` (a msgspec Struct); `check` adds cross-field
    checks with the route and the whole config in view (see `RouteContext`).
    """
    from pygate.plugins.python.loading import describe

    try:
        schema, factory, phases = describe(implementation)
    except TypeError as exc:
        raise ValueError(f"plugin {name!r}: {exc}") from exc
    plugin = PythonPlugin(name, schema, factory, phases, check or _no_checks)
    register(plugin)
    return plugin


def load_plugin(name: str) -> AnyPlugin:
    """The plugin registered as `name`, or the one a module path names.

    Raises PluginLoadError with a message fit for a config error line.
    """
    _load_builtins()
    plugin = _REGISTRY.get(name)
    if plugin is not None:
        return plugin
    if ":" not in name:
        raise PluginLoadError(
            "unknown plugin; available plugins: "
            + ", ".join(sorted(_REGISTRY))
            + ' (or a module path "package.module:Attribute")'
        )
    cached = _MODULE_PLUGINS.get(name)
    if cached is None:
        from pygate.plugins.python.loading import import_module_plugin

        schema, factory, phases = import_module_plugin(name)  # raises PluginLoadError
        cached = _MODULE_PLUGINS[name] = PythonPlugin(name, schema, factory, phases)
    return cached


def get_plugin(name: str) -> AnyPlugin | None:
    try:
        return load_plugin(name)
    except PluginLoadError:
        return None


def python_phases(plugins: dict[str, Any]) -> frozenset[str]:
    """The phases any Python plugin of a route implements (given its `plugins:` mapping)."""
    phases: frozenset[str] = frozenset()
    for name in plugins:
        plugin = get_plugin(name)
        if isinstance(plugin, PythonPlugin):
            phases |= plugin.phases
    return phases


def plugin_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def builtin_plugins() -> list[BuiltinPlugin]:
    """The plugins that run in the core (each has a slot in the core route config)."""
    _load_builtins()
    return [p for _, p in sorted(_REGISTRY.items()) if isinstance(p, BuiltinPlugin)]


def python_plugins() -> list[PythonPlugin]:
    """The registered built-in Python plugins (module-path plugins are not listed)."""
    _load_builtins()
    return [p for _, p in sorted(_REGISTRY.items()) if isinstance(p, PythonPlugin)]


# Modules under pygate/plugins/ that register built-in plugins (native and Python).
# Listed, not discovered: a plugin file that is still being written must not break
# config loading for every other route. Adding a built-in plugin = one file + one name.
BUILTIN_MODULES = (
    "basic_auth",
    "cors",
    "ip_restriction",
    "jwt",
    "key_auth",
    "rate_limit",
    # Python built-ins
    "circuit_breaker",
    "mock",
    "proxy_cache",
    "request_transformer",
    "request_validation",
    "response_transformer",
    "traffic_split",
)

_loaded = False


def _load_builtins() -> None:
    # Imported lazily: the plugin modules import this one to register themselves.
    global _loaded
    if _loaded:
        return
    _loaded = True
    for name in BUILTIN_MODULES:
        importlib.import_module(f"pygate.plugins.{name}")
