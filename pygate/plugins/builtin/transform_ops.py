"""The operations shared by request-transformer and response-transformer.

Kong's five operations, applied in Kong's order (remove, rename, replace, add, append):
- remove: drop every value of the name;
- rename: move the values to a new name (nothing happens when the name is absent);
- replace: set the value only when the name is present;
- add: set the value only when the name is absent;
- append: add one more value (for a JSON field: turn it into a list and extend it).

Headers and query args are both ordered multi-valued pair lists; they differ only in
whether names compare case-insensitively. JSON bodies are edited at the top level only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

Pairs = list[tuple[str, str]]

# Kong's order; also the names of the config sections each plugin's schema has.
OPERATIONS = ("remove", "rename", "replace", "add", "append")


V = TypeVar("V")


# No slots: a slotted frozen dataclass cannot be built through a subscripted alias.
@dataclass(frozen=True)
class Edits(Generic[V]):
    """What to do to one set of names: a pair list's or a JSON object's top-level fields."""

    remove: Sequence[str] = ()
    rename: Mapping[str, str] = field(default_factory=dict)
    replace: Mapping[str, V] = field(default_factory=dict)
    add: Mapping[str, V] = field(default_factory=dict)
    append: Mapping[str, V] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.remove or self.rename or self.replace or self.add or self.append)


PairEdits = Edits[str]  # headers or query args
JsonEdits = Edits[Any]  # values are any JSON value


def _folder(case_insensitive: bool) -> Callable[[str], str]:
    return str.lower if case_insensitive else str


def edit_pairs(pairs: Pairs, edits: PairEdits, *, case_insensitive: bool) -> Pairs:
    """Apply `edits` to a copy of `pairs`; the order of untouched pairs is kept."""
    fold = _folder(case_insensitive)
    out = list(pairs)
    if edits.remove:
        gone = {fold(name) for name in edits.remove}
        out = [(k, v) for k, v in out if fold(k) not in gone]
    for old, new in edits.rename.items():
        old_key = fold(old)
        out = [(new if fold(k) == old_key else k, v) for k, v in out]
    for name, value in edits.replace.items():
        key = fold(name)
        if any(fold(k) == key for k, _ in out):
            # All values of the name collapse into the one replacement, where the first was.
            first = next(i for i, (k, _) in enumerate(out) if fold(k) == key)
            out = [p for i, p in enumerate(out) if i == first or fold(p[0]) != key]
            out[first] = (name, value)
    for name, value in edits.add.items():
        key = fold(name)
        if not any(fold(k) == key for k, _ in out):
            out.append((name, value))
    for name, value in edits.append.items():
        out.append((name, value))
    return out


def edit_json(doc: dict[str, Any], edits: JsonEdits) -> dict[str, Any]:
    """Apply `edits` to a copy of a JSON object; field order follows Python's dicts."""
    out = dict(doc)
    for name in edits.remove:
        out.pop(name, None)
    for old, new in edits.rename.items():
        if old in out:
            out[new] = out.pop(old)
    for name, value in edits.replace.items():
        if name in out:
            out[name] = value
    for name, value in edits.add.items():
        out.setdefault(name, value)
    for name, value in edits.append.items():
        if name not in out:
            out[name] = [value]
        elif isinstance(out[name], list):
            out[name] = [*out[name], value]
        else:
            out[name] = [out[name], value]
    return out


def section_edits(config: Any, part: str) -> Edits[Any]:
    """The edits the five config sections give for `part` (headers, querystring, body...)."""
    return Edits(*(getattr(getattr(config, op), part) for op in OPERATIONS))


def edit_headers(pairs: Pairs, edits: PairEdits) -> Pairs | None:
    """The edited header list, or None when nothing changes (header names ignore case)."""
    if not edits:
        return None
    edited = edit_pairs(pairs, edits, case_insensitive=True)
    return None if edited == pairs else edited


def edit_json_body(
    content_type: str | None, body: bytes, edits: JsonEdits, *, empty_is_object: bool
) -> bytes | None:
    """The edited JSON body, or None when it is left as is.

    Left as is: no edits, not a JSON type, not a JSON object, or no change. With
    `empty_is_object` an empty body counts as `{}` and is always written out, so that
    `add` can build a body a client left empty.
    """
    if not edits or not is_json_type(content_type):
        return None
    empty = empty_is_object and not body.strip()
    if empty:
        doc: dict[str, Any] = {}
    else:
        try:
            doc = json.loads(body)
        except ValueError:
            return None  # not ours to judge; request-validation refuses bad JSON
        if not isinstance(doc, dict):
            return None
    edited = edit_json(doc, edits)
    if edited == doc and not empty:
        return None
    return json.dumps(edited, ensure_ascii=False, separators=(",", ":")).encode()


def is_json_type(content_type: str | None) -> bool:
    """application/json, or any `+json` type such as application/problem+json."""
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Framing is the gateway's job: a plugin that edited these would corrupt the message.
_MANAGED = {"content-length", "transfer-encoding", "connection"}


def header_problem(name: str, value: str = "") -> str | None:
    """Why a configured header cannot be sent as is, or None."""
    if not _TOKEN.match(name):
        return f"not a valid header name: {name!r}"
    if name.lower() in _MANAGED:
        return f"{name} is set by the gateway and cannot be configured"
    if any(ch in value for ch in "\r\n\0"):
        return "header values cannot contain CR, LF or NUL"
    return None


def header_config_problems(config: Any) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """Config checks for the `headers` of remove/rename/replace/add/append sections.

    Yields (path relative to the plugin config, message) as registry checks do.
    """
    for index, name in enumerate(config.remove.headers):
        if problem := header_problem(name):
            yield ("remove", "headers", index), problem
    for old, new in config.rename.headers.items():
        if problem := header_problem(old) or header_problem(new):
            yield ("rename", "headers", old), problem
    for op in ("replace", "add", "append"):
        for name, value in getattr(config, op).headers.items():
            if problem := header_problem(name, value):
                yield (op, "headers", name), problem
