"""Built-in plugins and the registry that maps their names to schemas."""

from pygate.plugins.registry import (
    BuiltinPlugin,
    PluginLoadError,
    PythonPlugin,
    RouteContext,
    builtin_plugins,
    get_plugin,
    load_plugin,
    plugin_names,
    python_plugins,
    register,
    register_python,
)

__all__ = [
    "BuiltinPlugin",
    "PluginLoadError",
    "PythonPlugin",
    "RouteContext",
    "builtin_plugins",
    "get_plugin",
    "load_plugin",
    "plugin_names",
    "python_plugins",
    "register",
    "register_python",
]
