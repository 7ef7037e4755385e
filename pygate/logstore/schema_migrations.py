"""Versioned SQL migrations shipped inside the package (pygate/logstore/migrations).

A migration is a file `NNN_description.sql`; its version is the file name without
`.sql`. Files are applied in version order, each at most once per store; applied
versions are recorded in `pygate.schema_migrations`. Statements are separated by
`;` at the end of a line. `{retention_days}` is replaced by the configured value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_FILE_NAME = re.compile(r"^(\d{3,})_[a-z0-9_]+\.sql$")
_STATEMENT_END = re.compile(r";\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Migration:
    version: str
    sql: str

    def statements(self, **params: object) -> list[str]:
        text = "\n".join(
            line for line in self.sql.splitlines() if not line.lstrip().startswith("--")
        )
        # Plain replacement, not str.format: SQL may contain other braces.
        for name, value in params.items():
            text = text.replace("{" + name + "}", str(value))
        return [part.strip() for part in _STATEMENT_END.split(text) if part.strip()]


def bundled_migrations() -> list[Migration]:
    folder = resources.files("pygate.logstore").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if _FILE_NAME.match(entry.name):
            found.append(Migration(entry.name.removesuffix(".sql"), entry.read_text("utf-8")))
    return sorted(found, key=lambda m: m.version)
