"""JSON schemas of the config's msgspec Structs, for /openapi.json and GET /plugins.

msgspec cannot describe our text-typed values (Duration, Name, ...: builtin
subclasses parsed by a dec_hook), nor unions of one with a Struct ("addr" or
{addr, weight}). So each Struct is mirrored, field for field, with those values
replaced by builtin types carrying their pattern, and the mirrors go through
`msgspec.json.schema_components`. Defaults are written as a user would write them
("3s", not 3000).
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Annotated, Any

import msgspec

from pygate.config import units
from pygate.config.schema import Route
from pygate.plugins import get_plugin, plugin_names

_DURATION_TEXT = r"^\s*\d+(\.\d+)?\s*(ms|s|m|h)?\s*$"
_SIZE_TEXT = r"^\s*\d+\s*([kmgKMG]([iI]?[bB])?|[bB])?\s*$"
_HOST_PORT = r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$"

_TEXT_TYPES: dict[type, Any] = {
    units.Duration: Annotated[str, msgspec.Meta(pattern=_DURATION_TEXT)]
    | Annotated[float, msgspec.Meta(ge=0)],
    units.Size: Annotated[str, msgspec.Meta(pattern=_SIZE_TEXT)]
    | Annotated[int, msgspec.Meta(ge=0)],
    units.ListenAddr: Annotated[str, msgspec.Meta(pattern=_HOST_PORT)],
    units.TargetAddr: Annotated[str, msgspec.Meta(pattern=_HOST_PORT)],
    units.Name: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")],
    units.HttpMethod: Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z][A-Za-z-]{0,31}$")],
    units.RoutePath: Annotated[str, msgspec.Meta(pattern=r"^/")],
    units.HostPattern: Annotated[str, msgspec.Meta(pattern=r"^(\*\.)?[A-Za-z0-9.-]+$")],
}


def _default_text(value: Any) -> Any:
    if isinstance(value, units.Duration):
        millis = int(value)
        return f"{millis // 1000}s" if millis % 1000 == 0 else f"{millis}ms"
    if isinstance(value, units.Size):
        return int(value)
    if isinstance(value, str):
        return str(value)
    return value


def mirror(kind: Any) -> Any:
    """`kind` with every Struct mirrored and every text-typed value made plain."""
    origin = typing.get_origin(kind)
    if origin is Annotated:
        inner, *metadata = typing.get_args(kind)
        return Annotated[(mirror(inner), *metadata)]
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(lambda a, b: a | b, [mirror(a) for a in typing.get_args(kind)])
    if origin in (list, dict, tuple, set, frozenset):
        args = tuple(mirror(a) for a in typing.get_args(kind))
        return origin[args] if args else origin
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return _mirror_struct(kind)
    if isinstance(kind, type):
        for text_type, plain in _TEXT_TYPES.items():
            if issubclass(kind, text_type):
                return plain
    return kind


@functools.cache
def _mirror_struct(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    config = cls.__struct_config__
    fields = []
    renames = {}
    for info in msgspec.structs.fields(cls):
        kind = plugins_type() if cls is Route and info.name == "plugins" else mirror(info.type)
        if info.required:
            fields.append((info.name, kind))
        elif info.default is not msgspec.NODEFAULT:
            fields.append((info.name, kind, _default_text(info.default)))
        else:
            fields.append((info.name, kind, msgspec.field(default_factory=info.default_factory)))
        if info.encode_name != info.name:
            renames[info.name] = info.encode_name
    return msgspec.defstruct(
        _unique_name(cls),
        fields,
        kw_only=True,
        forbid_unknown_fields=config.forbid_unknown_fields,
        rename=renames or None,
        module=__name__,
    )


_NAMES: dict[str, type] = {}


def _unique_name(cls: type) -> str:
    """The Struct's name, qualified by its module when another Struct has it already
    (schema component names must be unique: two plugins may both have a `Names`)."""
    name = cls.__name__
    if _NAMES.setdefault(name, cls) is not cls:
        module = cls.__module__.rsplit(".", 1)[-1]
        name = "".join(part.title() for part in module.split("_")) + name
        _NAMES.setdefault(name, cls)
    return name


@functools.cache
def plugins_type() -> type[msgspec.Struct]:
    """`routes[].plugins`: each registered plugin by name, with its own schema."""
    fields = []
    renames = {}
    for name in plugin_names():
        plugin = get_plugin(name)
        attr = "p_" + "".join(c if c.isalnum() else "_" for c in name)
        kind: Any = mirror(plugin.schema)
        try:
            msgspec.json.schema(kind)
        except (TypeError, ValueError):
            kind = dict[str, Any]  # a config type msgspec cannot describe: any mapping
        fields.append((attr, kind | None, None))
        renames[attr] = name
    return msgspec.defstruct("RoutePlugins", fields, kw_only=True, rename=renames, module=__name__)


def plugin_schema(name: str) -> dict[str, Any]:
    """The JSON schema of one plugin's config (self-contained, with $defs)."""
    plugin = get_plugin(name)
    return msgspec.json.schema(mirror(plugin.schema)) if plugin is not None else {}
