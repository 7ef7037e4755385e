"""Turn a plugin implementation (class or async function) into what the registry keeps,
and import module-path plugins ("package.module:Attribute") named in config."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

import msgspec

from pygate.plugins.python.plugin import NoConfig, Plugin, implemented_phases

Described = tuple[type[msgspec.Struct], Callable[[Any], Any], frozenset[str]]


class _FunctionPlugin:
    """A plain `async def fn(request)`: an access plugin without config."""

    __slots__ = ("access", "config")

    def __init__(self, function: Callable[..., Any], config: Any) -> None:
        self.access = function
        self.config = config


def describe(implementation: Any) -> Described:
    """(config schema, config -> instance, phases); TypeError says what is wrong."""
    if inspect.isclass(implementation) and issubclass(implementation, Plugin):
        schema = implementation.Config
        if not (inspect.isclass(schema) and issubclass(schema, msgspec.Struct)):
            raise TypeError(f"{implementation.__name__}.Config must be a msgspec.Struct class")
        phases = implemented_phases(implementation)
        if not phases:
            raise TypeError(f"{implementation.__name__} implements none of access, response, log")
        for phase in phases:
            if not inspect.iscoroutinefunction(getattr(implementation, phase)):
                raise TypeError(f"{implementation.__name__}.{phase} must be an async def")
        return schema, implementation, phases
    if inspect.iscoroutinefunction(implementation):

        def factory(config: Any) -> _FunctionPlugin:
            return _FunctionPlugin(implementation, config)

        return NoConfig, factory, frozenset({"access"})
    raise TypeError(
        "expected a pygate.plugins.python.Plugin subclass or an async function, "
        f"got {_kind(implementation)}"
    )


def import_module_plugin(path: str) -> Described:
    """Import "package.module:Attribute"; raises PluginLoadError with a readable reason."""
    from pygate.plugins.registry import PluginLoadError

    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute or ":" in attribute:
        raise PluginLoadError(f'expected a module path "package.module:Attribute", got "{path}"')
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise PluginLoadError(
                f'cannot import module "{module_name}": no module named "{exc.name}" '
                "(is its directory on PYTHONPATH?)"
            ) from exc
        raise PluginLoadError(f'cannot import module "{module_name}": {exc}') from exc
    except Exception as exc:  # the module itself is broken: say how
        raise PluginLoadError(
            f'cannot import module "{module_name}": {type(exc).__name__}: {exc}'
        ) from exc
    target: Any = module
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise PluginLoadError(
                f'module "{module_name}" has no attribute "{attribute}"'
            ) from None
    try:
        return describe(target)
    except TypeError as exc:
        raise PluginLoadError(f'"{path}": {exc}') from exc


def _kind(value: Any) -> str:
    if inspect.isclass(value):
        return f"class {value.__name__}"
    if callable(value):
        return f"{type(value).__name__} {getattr(value, '__name__', '')} (not async)".replace(
            "  ", " "
        )
    return type(value).__name__
