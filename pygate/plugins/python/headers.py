"""Headers: case-insensitive, multi-valued, ordered and mutable.

Kept as the list of (name, value) pairs the core hands over, because that is what it
takes back: no dict is built unless a plugin asks for one, and `changed` tells the
dispatcher whether the list has to be sent back at all. A handful of headers makes a
linear scan cheaper than maintaining an index.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Union

HeadersInit = Union["Headers", Mapping[str, str], Iterable[tuple[str, str]], None]


class Headers:
    __slots__ = ("_pairs", "changed")

    def __init__(self, init: HeadersInit = None) -> None:
        if init is None:
            self._pairs: list[tuple[str, str]] = []
        elif isinstance(init, Headers):
            self._pairs = list(init._pairs)
        elif isinstance(init, Mapping):
            self._pairs = [(str(k), str(v)) for k, v in init.items()]
        else:
            self._pairs = [(str(k), str(v)) for k, v in init]
        self.changed = False

    @classmethod
    def _wrap(cls, pairs: list[tuple[str, str]]) -> Headers:
        """Adopt the core's list without copying (it belongs to this request alone)."""
        headers = cls.__new__(cls)
        headers._pairs = pairs
        headers.changed = False
        return headers

    # ----- reading ------------------------------------------------------------------
    def get(self, name: str, default: str | None = None) -> str | None:
        """The first value of `name`, or `default`."""
        lower = name.lower()
        for key, value in self._pairs:
            if key.lower() == lower:
                return value
        return default

    def get_all(self, name: str) -> list[str]:
        lower = name.lower()
        return [value for key, value in self._pairs if key.lower() == lower]

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        """Names, once each, in first-seen order."""
        seen: set[str] = set()
        for key, _ in self._pairs:
            lower = key.lower()
            if lower not in seen:
                seen.add(lower)
                yield key

    def keys(self) -> list[str]:
        return list(self)

    def items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in order, repeated names included."""
        return list(self._pairs)

    def __len__(self) -> int:
        return len(self._pairs)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            return self._pairs == other._pairs
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._pairs!r})"

    # ----- changing -----------------------------------------------------------------
    def __setitem__(self, name: str, value: str) -> None:
        """Replace every value of `name` by one value (kept at the first one's place)."""
        lower = name.lower()
        pairs: list[tuple[str, str]] = []
        placed = False
        for pair in self._pairs:
            if pair[0].lower() != lower:
                pairs.append(pair)
            elif not placed:
                pairs.append((name, str(value)))
                placed = True
        if not placed:
            pairs.append((name, str(value)))
        self._pairs = pairs
        self.changed = True

    def add(self, name: str, value: str) -> None:
        """Add one more value for `name` (e.g. a second Set-Cookie)."""
        self._pairs.append((name, str(value)))
        self.changed = True

    def __delitem__(self, name: str) -> None:
        if not self.remove(name):
            raise KeyError(name)

    def remove(self, name: str) -> bool:
        """Drop every value of `name`; False when there was none."""
        lower = name.lower()
        kept = [pair for pair in self._pairs if pair[0].lower() != lower]
        if len(kept) == len(self._pairs):
            return False
        self._pairs = kept
        self.changed = True
        return True

    def pop(self, name: str, default: str | None = None) -> str | None:
        value = self.get(name, default)
        self.remove(name)
        return value

    def setdefault(self, name: str, value: str) -> str:
        existing = self.get(name)
        if existing is not None:
            return existing
        self.add(name, value)
        return str(value)

    def update(self, other: HeadersInit = None, /, **kwargs: str) -> None:
        """Set each given name (replacing its values), as dict.update does."""
        for name, value in Headers(other).items():
            self[name] = value
        for name, value in kwargs.items():
            self[name.replace("_", "-")] = value

    def clear(self) -> None:
        if self._pairs:
            self._pairs = []
            self.changed = True
