"""Built-in plugins and the registry that maps their names to schemas."""

from pygate.plugins.registry import (
    NativePlugin,
    PluginLoadError,
    PythonPlugin,
    RouteContext,
    get_plugin,
    load_plugin,
    native_plugins,
    plugin_names,
    python_plugins,
    register,
    register_python,
)

__all__ = [
    "NativePlugin",
    "PluginLoadError",
    "PythonPlugin",
    "RouteContext",
    "get_plugin",
    "load_plugin",
    "native_plugins",
    "plugin_names",
    "python_plugins",
    "register",
    "register_python",
]
