"""Versioned SQL migrations shipped inside the package (pygate/logstore/migrations).

A migration is a file `NNN_description.sql`; its version is the file name without
`.sql`. Files are applied in version order, each at most once per store; applied
versions are recorded in `pygate.schema_migrations`. Statements are separated by
`;` at the end of a line. `{retention_days}` is replaced by the configured value.

The same files run on chDB and on a ClickHouse server: a backend only supplies a way
to run a statement and to read text back (`apply_migrations`). Statements are
written to be safe to repeat (IF NOT EXISTS, idempotent ALTERs), because a migration
interrupted halfway is run again from its first statement.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pygate.logstore.cluster_ddl import ClusterSchema

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


_BOOKKEEPING = (
    "CREATE DATABASE IF NOT EXISTS pygate",
    "CREATE TABLE IF NOT EXISTS pygate.schema_migrations "
    "(version String, applied_at DateTime DEFAULT now()) "
    "ENGINE = MergeTree ORDER BY version",
)


_APPLIED = "SELECT version FROM pygate.schema_migrations"


def apply_migrations(
    execute: Callable[[str], object],
    read_text: Callable[[str], str],
    *,
    retention_days: int,
    cluster: ClusterSchema | None = None,
) -> list[str]:
    """Apply the bundled migrations a store has not seen yet; returns their versions.

    A store that is up to date gets no DDL at all, so a sink whose user may only
    insert (a ClickHouse server's grants, or `pygate logs serve`) can use it.
    With `cluster` (log.cluster), every statement runs in its ON CLUSTER form
    (cluster_ddl.py); the versions recorded are the same."""
    try:
        done = set(read_text(_APPLIED).split())
    except Exception:  # noqa: BLE001 - a new store has no bookkeeping table yet
        for statement in _BOOKKEEPING if cluster is None else cluster.bookkeeping():
            execute(statement)
        done = set(read_text(_APPLIED).split())
    rewriter = cluster.rewriter() if cluster is not None else None
    applied = []
    for migration in bundled_migrations():
        statements = migration.statements(retention_days=retention_days)
        if rewriter is not None:
            # Applied migrations too: later statements need what they created.
            statements = [out for s in statements for out in rewriter.rewrite(s)]
        if migration.version in done:
            continue
        for statement in statements:
            execute(statement)
        execute(f"INSERT INTO pygate.schema_migrations (version) VALUES ('{migration.version}')")
        applied.append(migration.version)
    return applied
