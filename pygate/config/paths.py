"""Field paths such as `routes[0].plugins.rate-limit.rate`.

A path is kept as a tuple of mapping keys (str) and list indexes (int) so it can be
used to look up YAML line numbers; it is only turned into text for messages.
"""

from __future__ import annotations

import re
from collections.abc import Collection

FieldPath = tuple[str | int, ...]

# `.name` or `[3]`; names may contain dashes (plugin names such as `rate-limit`).
_SEGMENT = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")


def format_path(path: FieldPath) -> str:
    out: list[str] = []
    for part in path:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif out:
            out.append(f".{part}")
        else:
            out.append(str(part))
    return "".join(out)


def parse_path(text: str) -> FieldPath | None:
    """Parse `a.b[2].c`; None when the text is not a path (so callers can fall back)."""
    parts: list[str | int] = []
    pos = 0
    while pos < len(text):
        match = _SEGMENT.match(text, pos)
        if match is None or match.end() == pos:
            return None
        name, index = match.groups()
        parts.append(int(index) if index is not None else name)
        pos = match.end()
    return tuple(parts) if parts else None


def names_uncertain(invalid: Collection[FieldPath], section: FieldPath) -> bool:
    """Whether a list of named entries (`upstreams`, `ai.models`) has an entry whose name
    failed the schema: a reference to an unknown name may then mean that entry."""
    n = len(section)
    return any(
        p[:n] == section and (len(p) <= n + 1 or (len(p) == n + 2 and p[-1] == "name"))
        for p in invalid
    )
