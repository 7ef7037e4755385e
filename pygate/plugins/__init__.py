"""Built-in plugins and the registry that maps their names to schemas."""

from pygate.plugins.registry import (
    BuiltinPlugin,
    RouteContext,
    builtin_plugins,
    get_plugin,
    plugin_names,
    register,
)

__all__ = [
    "BuiltinPlugin",
    "RouteContext",
    "builtin_plugins",
    "get_plugin",
    "plugin_names",
    "register",
]
