"""`${VAR}` and `${VAR:-default}` substitution in config string values.

`$$` escapes a literal dollar sign, so `$${HOME}` stays `${HOME}`. Substitution runs
once per value; a variable's own text is never expanded again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_REFERENCE = re.compile(
    r"\$\$"  # escaped dollar
    r"|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?P<default>:-[^}]*)?\}"
    r"|\$\{(?P<bad>[^}]*)\}?"  # anything else that starts like a reference
)


class UnsetVariableError(ValueError):
    pass


def has_references(text: str) -> bool:
    return "$" in text and _REFERENCE.search(text) is not None


def substitute(text: str, environ: Mapping[str, str]) -> str:
    """Expand references in `text`; raises UnsetVariableError (message ready to show)."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        if match.group("bad") is not None:
            raise UnsetVariableError(
                f"malformed variable reference {match.group(0)!r}; "
                "expected ${NAME} or ${NAME:-default}"
            )
        name = match.group("name")
        value = environ.get(name)
        if value is not None:
            return value
        default = match.group("default")
        if default is not None:
            return default[2:]
        raise UnsetVariableError(
            f"environment variable {name} is not set (use ${{{name}:-default}} for a fallback)"
        )

    return _REFERENCE.sub(replace, text)
