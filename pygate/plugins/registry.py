"""Plugin registry: plugin name (as written under `routes[].plugins`) -> implementation.

Two kinds of plugins share one lookup and one config check (msgspec schema + `check`):

- `NativePlugin`: runs inside the Rust core (core-rs/src/plugins/<name>.rs, which checks
  the values it parses). Python's part is its config schema, the checks that need the
  route or the whole config, and `to_core`, the value of `plugins.<name>` in the core
  route config. Each declares a `kind` (see `PluginKind`); the rules between plugins are
  written here, once, by kind, and the core trusts the config they passed.
- `PythonPlugin`: runs in Python on the asyncio loop, called by the core through
  `pygate.plugins.python.dispatch` in the phases it implements (access, response, log).

Plugins register themselves by name from a module of `pygate/plugins/native/` (native
twins) or `pygate/plugins/builtin/` (built-in Python plugins), all imported on the
first lookup:

    from pygate.plugins.python import Plugin, Request, Response
    from pygate.plugins.registry import register_python   # in pygate/plugins/builtin/mock.py

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
import pkgutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

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


# What a native plugin does for a route, in the order the core runs them (pipeline/mod.rs):
# "guard" (phase 3: who may call at all, CORS preflights), "auth" (phase 4: finds the
# consumer; a route takes one), "limit" (phase 5: rate limits).
PluginKind = Literal["guard", "auth", "limit"]


@dataclass(frozen=True, slots=True)
class NativePlugin:
    """A plugin implemented by the Rust core (core-rs/src/plugins/<name>.rs)."""

    name: str  # also its name in the core (core-rs/src/plugins/mod.rs's REGISTRY)
    kind: PluginKind
    schema: type[msgspec.Struct]
    to_core: Callable[[Any], dict[str, Any]]
    checks: PluginCheck = _no_checks  # the plugin's own; `check` adds its kind's rules

    def check(self, config: Any, context: RouteContext) -> Iterable[tuple[FieldPath, str]]:
        yield from _KIND_RULES.get(self.kind, _no_checks)(config, context)
        yield from self.checks(config, context)


@dataclass(frozen=True, slots=True)
class PythonPlugin:
    """A plugin run in Python by the dispatcher (built in, or from a module path)."""

    name: str
    schema: type[msgspec.Struct]
    # config (an instance of `schema`) -> object with the async phase methods below
    factory: Callable[[Any], Any]
    phases: frozenset[str]  # subset of {"access", "response", "log"}
    check: PluginCheck = _no_checks


AnyPlugin = NativePlugin | PythonPlugin


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


def plugins_of_kind(kind: PluginKind) -> list[NativePlugin]:
    """The native plugins of `kind`, by name (the core's own order is its REGISTRY's)."""
    return [p for p in native_plugins() if p.kind == kind]


def names_of_kind(kind: PluginKind) -> str:
    """The names of the plugins of `kind` for messages, e.g. "basic-auth, jwt or key-auth"."""
    names = [p.name for p in plugins_of_kind(kind)]
    return " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))


def route_has_kind(route: Route, kind: PluginKind) -> bool:
    return any(p.name in route.plugins for p in plugins_of_kind(kind))


def _one_authentication_plugin(
    _config: Any, context: RouteContext
) -> Iterable[tuple[FieldPath, str]]:
    # Said once, on the last of them in the route's own order.
    auth = {p.name for p in plugins_of_kind("auth")}
    enabled = [name for name in context.route.plugins if name in auth]
    if len(enabled) > 1 and context.path[-1] == enabled[-1]:
        yield (), f"a route takes one authentication plugin; this one has {', '.join(enabled)}"


# Rules a plugin's kind brings along: the rules between native plugins, each in one place.
_KIND_RULES: dict[str, PluginCheck] = {"auth": _one_authentication_plugin}


def plugin_names() -> list[str]:
    _load_builtins()
    return sorted(_REGISTRY)


def native_plugins() -> list[NativePlugin]:
    """The plugins that run in the core."""
    _load_builtins()
    return [p for _, p in sorted(_REGISTRY.items()) if isinstance(p, NativePlugin)]


def python_plugins() -> list[PythonPlugin]:
    """The registered built-in Python plugins (module-path plugins are not listed)."""
    _load_builtins()
    return [p for _, p in sorted(_REGISTRY.items()) if isinstance(p, PythonPlugin)]


# The packages whose modules register plugins: a module of native/ or builtin/ that
# defines PLUGIN is one plugin (found, not listed: adding a plugin is adding its file);
# the others there (jwks_refresh, transform_ops) are their helpers.
PLUGIN_PACKAGES = ("pygate.plugins.native", "pygate.plugins.builtin")

_loaded = False


def _load_builtins() -> None:
    # Imported lazily: the plugin modules import this one to register themselves.
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in PLUGIN_PACKAGES:
        package = importlib.import_module(package_name)
        for module in sorted(m.name for m in pkgutil.iter_modules(package.__path__)):
            importlib.import_module(f"{package_name}.{module}")
