"""Turn parsed YAML into schema Structs, collecting every problem on the way.

msgspec stops at the first error and reports dict keys as `[...]`, so we walk
Structs (and lists of Structs) ourselves and only hand leaf fields to
`msgspec.convert`. Its messages ("Expected `int` >= 1 - at `$.rate`") are rewritten
into the one-line form the CLI prints ("expected an integer >= 1, got 0").

A value that fails is reported, its path is added to `Converter.invalid`, and a
stand-in takes its place (see `stand_in`), so the Structs are still built and the
checks that come later look at everything else. They must not judge an invalid path.
"""

from __future__ import annotations

import copy
import difflib
import re
import types
import typing
from collections.abc import Callable
from typing import Any

import msgspec

from pygate.config.errors import ConfigProblem
from pygate.config.paths import FieldPath, parse_path
from pygate.config.units import SECRET_MARK, dec_hook, describe
from pygate.config.yaml_source import YamlSource

INVALID: Any = object()  # marks a value that failed; its problems are already recorded
_NO_DEFAULT: Any = object()


# Converts one field whose schema is open-ended (plugin configs, keyed by plugin
# name): called with the raw value and its path, returns the value or INVALID.
FieldHook = Callable[["Converter", Any, FieldPath], Any]


class Converter:
    def __init__(
        self, source: YamlSource, field_hooks: dict[tuple[type, str], FieldHook] | None = None
    ) -> None:
        self.source = source
        self.field_hooks = field_hooks or {}
        self.problems: list[ConfigProblem] = []
        # Paths of values that failed (and were reported): they hold stand-ins.
        self.invalid: set[FieldPath] = set()

    def report(self, path: FieldPath, message: str) -> None:
        self.problems.append(self.source.problem(path, message))

    def accept(
        self, converted: Any, raw: Any, kind: Any, path: FieldPath, default: Any = _NO_DEFAULT
    ) -> Any:
        """`converted`, or when that is INVALID a stand-in, with `path` marked invalid."""
        if converted is not INVALID:
            return converted
        self.invalid.add(path)
        return stand_in(kind, raw, default)

    def value(self, data: Any, kind: Any, path: FieldPath) -> Any:
        """Convert `data` to `kind`; returns INVALID after recording problems."""
        if path in self.source.unresolved:  # an unset ${VAR}: reported while reading
            return INVALID
        base = _strip_annotated(kind)
        if _is_struct(base):
            return self.struct(data, base, path)
        members = _union_members(base)
        if members and any(_is_struct(m) for m in members):
            return self._union(data, members, path)
        item = _list_item_type(base)
        if item is not None:
            # Element by element, so one bad entry does not hide the next.
            if not isinstance(data, list):
                self.report(path, f"expected a list, got {shown(data, kind)}")
                return INVALID
            minimum = _min_length(kind)
            if len(data) < minimum:
                items = "item" if minimum == 1 else "items"
                self.report(
                    path, f"expected a list with at least {minimum} {items}, got {len(data)}"
                )
                return INVALID
            return [
                self.accept(self.value(entry, item, (*path, i)), entry, item, (*path, i))
                for i, entry in enumerate(data)
            ]
        return self._leaf(data, kind, path)

    def _union(self, data: Any, members: tuple[Any, ...], path: FieldPath) -> Any:
        # Secrets are strings or lists of them, never in a union with a Struct.
        # msgspec cannot mix Structs and custom types in one union ("addr" or
        # {addr, weight}), so pick the member by the shape of the data.
        if data is None and type(None) in members:
            return None
        if isinstance(data, dict):
            struct = next(m for m in members if _is_struct(m))
            return self.struct(data, struct, path)
        others = [m for m in members if not _is_struct(m) and m is not type(None)]
        if not others:
            self.report(path, f"expected a mapping, got {describe(data)}")
            return INVALID
        if len(others) == 1:
            return self.value(data, others[0], path)
        return self._leaf(data, typing.Union[tuple(others)], path)  # noqa: UP007

    def _leaf(self, data: Any, kind: Any, path: FieldPath) -> Any:
        try:
            return msgspec.convert(data, kind, dec_hook=dec_hook)
        except msgspec.ValidationError as exc:
            self._report_msgspec(exc, data, kind, path)
            return INVALID

    def struct(self, data: Any, cls: type[msgspec.Struct], path: FieldPath) -> Any:
        """`cls` built from `data` (INVALID only if `data` is no mapping); failed fields
        hold stand-ins and are in `self.invalid`."""
        if path in self.source.unresolved:
            return INVALID
        if not isinstance(data, dict):
            self.report(path, f"expected a mapping, got {describe(data)}")
            return INVALID
        fields = {f.encode_name: f for f in msgspec.structs.fields(cls)}
        for key in data:
            if key not in fields:
                self.report((*path, str(key)), _unknown_field_message(str(key), list(fields)))
                # A misspelt field leaves its real one at the default: suspect both.
                self.invalid.add((*path, str(key)))
        values: dict[str, Any] = {}
        for name, info in fields.items():
            if name not in data:
                if info.required:
                    self.report((*path, name), "required field is missing")
                    self.invalid.add((*path, name))
                    values[info.name] = stand_in(info.type, None)
                continue
            raw = data[name]
            if raw is None and not info.required and not _admits_none(info.type):
                # `consumers:` with nothing after it means "none", i.e. the default.
                continue
            hook = self.field_hooks.get((cls, info.name))
            if hook is not None:
                converted = hook(self, raw, (*path, name))
            else:
                converted = self.value(raw, info.type, (*path, name))
            values[info.name] = self.accept(
                converted, raw, info.type, (*path, name), _default_of(info)
            )
        return cls(**values)

    def _report_msgspec(
        self, exc: msgspec.ValidationError, data: Any, kind: Any, path: FieldPath
    ) -> None:
        text = str(exc)
        message, _, where = text.rpartition(" - at `")
        if not message:
            message, where = text, "$`"
        suffix = where.rstrip("`")[1:]  # "$.a[0].b" -> ".a[0].b"
        relative = parse_path(suffix) if suffix else ()
        if relative is None or "[...]" in suffix:
            relative = ()
        full = (*path, *relative)
        if match := _MISSING.match(message):
            self.report((*full, match.group(1)), "required field is missing")
            return
        if match := _UNKNOWN.match(message):
            self.report((*full, match.group(1)), "unknown field")
            return
        actual = _lookup(data, relative)
        # Only a top-level Annotated field tells us its bounds; nested ones stay as is.
        bounds = _bounds(kind) if not relative else ""
        self.report(full, _rewrite(message, actual, kind, bounds))


_MISSING = re.compile(r"^Object missing required field `(.+)`$")
_UNKNOWN = re.compile(r"^Object contains unknown field `(.+)`$")
_EXPECTED_GOT = re.compile(r"^Expected `(.+?)`, got `.+`$")
_EXPECTED_BOUND = re.compile(r"^Expected `(.+?)` ([<>]=?) (-?[\d.]+)$")
_EXPECTED_LENGTH = re.compile(r"^Expected `(.+?)` of length ([<>]=?) (\d+)$")
_ENUM = re.compile(r"^Invalid enum value ")

_TYPE_WORDS = {
    "int": "an integer",
    "float": "a number",
    "str": "a string",
    "bool": "true or false",
    "array": "a list",
    "object": "a mapping",
    "null": "null",
}


def _type_words(spec: str) -> str:
    parts = [_TYPE_WORDS.get(p.strip(), p.strip()) for p in spec.split("|")]
    return " or ".join(parts)


def _rewrite(message: str, actual: Any, kind: Any, bounds: str) -> str:
    got = f", got {shown(actual, kind)}"
    if match := _EXPECTED_GOT.match(message):
        return f"expected {_type_words(match.group(1))}{bounds}{got}"
    if match := _EXPECTED_LENGTH.match(message):
        spec, op, count = match.groups()
        if spec == "str" and op == ">=" and count == "1":
            return f"expected a non-empty string{got}"
        unit = "characters" if spec == "str" else "items"
        word = {">=": "at least", "<=": "at most", ">": "more than", "<": "fewer than"}[op]
        return f"expected {_type_words(spec)} with {word} {count} {unit}{got}"
    if match := _EXPECTED_BOUND.match(message):
        spec, op, bound = match.groups()
        return f"expected {_type_words(spec)} {op} {bound}{got}"
    if _ENUM.match(message):
        choices = _literal_choices(kind)
        if choices:
            return f"expected one of {', '.join(map(str, choices))}{got}"
    # Our own dec_hook messages are already phrased for users.
    return message[:1].lower() + message[1:]


def shown(value: Any, kind: Any) -> str:
    """`value` as a message quotes it; only its shape where `kind` holds a secret, since
    `pygate check`, reload logs and admin API answers must never show one."""
    if not holds_secret(kind):
        return describe(value)
    if isinstance(value, bool) or value is None:
        return describe(value)
    for types_, words in ((dict, "a mapping"), (list, "a list"), (str, "a string")):
        if isinstance(value, types_):
            return words
    return "a number" if isinstance(value, int | float) else "a value"


def is_secret(kind: Any) -> bool:
    """Whether `kind` is (an Annotated type carrying) the secret mark itself."""
    while typing.get_origin(kind) is typing.Annotated:
        for meta in typing.get_args(kind)[1:]:
            if isinstance(meta, msgspec.Meta) and (meta.extra or {}).get(SECRET_MARK):
                return True
        kind = typing.get_args(kind)[0]
    return False


def holds_secret(kind: Any) -> bool:
    """Whether `kind`, or any type inside it (list items, union members, a Struct's
    fields), is a secret."""
    if is_secret(kind):
        return True
    if _is_struct(kind):
        return any(holds_secret(f.type) for f in msgspec.structs.fields(kind))
    return any(holds_secret(arg) for arg in typing.get_args(kind))


def _bounds(kind: Any) -> str:
    """ " >= 1" for Annotated[int, Meta(ge=1)], so a type error also states the range."""
    if typing.get_origin(kind) is not typing.Annotated:
        return ""
    words = []
    for meta in typing.get_args(kind)[1:]:
        if isinstance(meta, msgspec.Meta):
            for attr, op in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
                value = getattr(meta, attr)
                if value is not None:
                    words.append(f"{op} {value}")
    return " " + " and ".join(words) if words else ""


def _min_length(kind: Any) -> int:
    if typing.get_origin(kind) is typing.Annotated:
        for meta in typing.get_args(kind)[1:]:
            if isinstance(meta, msgspec.Meta) and meta.min_length is not None:
                return meta.min_length
    return 0


def _unknown_field_message(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.6)
    if close:
        return f"unknown field (did you mean {close[0]}?)"
    return f"unknown field; expected one of: {', '.join(known)}"


def _lookup(data: Any, path: FieldPath) -> Any:
    for part in path:
        try:
            data = data[part]
        except (KeyError, IndexError, TypeError):
            return None
    return data


def _strip_annotated(kind: Any) -> Any:
    while typing.get_origin(kind) is typing.Annotated:
        kind = typing.get_args(kind)[0]
    return kind


def _is_struct(kind: Any) -> bool:
    return isinstance(kind, type) and issubclass(kind, msgspec.Struct)


def _union_members(kind: Any) -> tuple[Any, ...]:
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return tuple(_strip_annotated(arg) for arg in typing.get_args(kind))
    return ()


def _list_item_type(kind: Any) -> Any:
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return item
    return None


def _admits_none(kind: Any) -> bool:
    kind = _strip_annotated(kind)
    if kind is None or kind is type(None) or kind is Any:
        return True
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(_admits_none(arg) for arg in typing.get_args(kind))
    return False


def stand_in(kind: Any, raw: Any, default: Any = _NO_DEFAULT) -> Any:
    """What a failed value is replaced by, so later checks can run on the rest.

    The field's default if it has one; else the value as written if it has the right
    Python type (a name that breaks a pattern still is the name routes refer to);
    else an empty value of the type. Checks must still skip invalid paths.
    """
    if default is not _NO_DEFAULT:
        return default
    if _fits(kind, raw):
        return raw
    return _empty(kind)


def _default_of(info: msgspec.structs.FieldInfo) -> Any:
    if info.default is not msgspec.NODEFAULT:
        return copy.copy(info.default)  # [] and {} defaults must not be shared
    if info.default_factory is not msgspec.NODEFAULT:
        return info.default_factory()
    return _NO_DEFAULT


_SCALARS = (bool, int, float, str)


def _fits(kind: Any, raw: Any) -> bool:
    base = _strip_annotated(kind)
    members = _union_members(base)
    if members:
        return any(_fits(m, raw) for m in members)
    if base is Any:
        return True
    for scalar in _SCALARS:
        if isinstance(base, type) and issubclass(base, scalar):
            return isinstance(raw, scalar) and (scalar is bool or not isinstance(raw, bool))
    return False  # containers and Structs: their failed entries are replaced one by one


def _empty(kind: Any) -> Any:
    base = _strip_annotated(kind)
    if _admits_none(base):
        return None
    if _is_struct(base):
        fields = msgspec.structs.fields(base)
        return base(**{f.name: _empty(f.type) for f in fields if f.required})
    members = _union_members(base)
    if members:
        return _empty(members[0])
    origin = typing.get_origin(base)
    if origin is list:
        return []
    if origin is dict:
        return {}
    if origin is typing.Literal:
        return typing.get_args(base)[0]
    for scalar in _SCALARS:
        if isinstance(base, type) and issubclass(base, scalar):
            return scalar()
    return None


def _literal_choices(kind: Any) -> tuple[Any, ...]:
    """The allowed values of the first Literal inside `kind` (through lists/unions)."""
    kind = _strip_annotated(kind)
    if typing.get_origin(kind) is typing.Literal:
        return typing.get_args(kind)
    for arg in typing.get_args(kind):
        found = _literal_choices(arg)
        if found:
            return found
    return ()
