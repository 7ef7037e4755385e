"""`log.cluster` and `log.keeper_path`: the call-log tables on a ClickHouse cluster.

The names go into DDL (ON CLUSTER NAME, Distributed('NAME', ...), the Replicated
engines' Keeper paths), so they are held to ClickHouse's rules here, with the field
named, instead of failing as SQL on the server. The rewrite itself: logstore/cluster_ddl.py.
"""

from __future__ import annotations

from collections.abc import Iterator

from pygate.config.paths import FieldPath
from pygate.logstore.cluster_ddl import (
    CLUSTER_NAME,
    DEFAULT_KEEPER_PATH,
    KEEPER_PATH,
    ClusterSchema,
)
from pygate.logstore.url import StoreLocation

Finding = tuple[FieldPath, str]


def log_cluster_problems(
    cluster: str | None, keeper_path: str | None, store: StoreLocation | None
) -> Iterator[Finding]:
    """`store`: the parsed log.store, None when it did not parse (reported already)."""
    if cluster is None:
        if keeper_path is not None:
            yield ("log", "keeper_path"), "is only used with log.cluster (set it, or drop this)"
        return
    if not CLUSTER_NAME.fullmatch(cluster):
        expected = (
            'expected a ClickHouse cluster name (the <remote_servers> entry): a letter or "_" '
            f'then letters, digits or "_", at most 64 characters; got "{cluster}"'
        )
        yield ("log", "cluster"), expected
    if keeper_path is not None and not _keeper_path_ok(keeper_path):
        expected = (
            "expected a Keeper path such as /clickhouse/tables: /-separated names of letters, "
            f'digits, "_", ".", "-" and {{macros}}, no trailing "/"; got "{keeper_path}"'
        )
        yield ("log", "keeper_path"), expected
    if store is not None and not store.is_server:
        why = (
            "needs a ClickHouse server store (log.store: clickhouse://...), "
            f"not {store.scheme}://: the embedded chDB store is one process on one machine, "
            "without Keeper, Replicated tables or ON CLUSTER DDL"
        )
        yield ("log", "cluster"), why


def _keeper_path_ok(path: str) -> bool:
    segments = path.split("/")[1:]
    return bool(KEEPER_PATH.fullmatch(path)) and not {".", ".."} & set(segments)


def cluster_schema(cluster: str | None, keeper_path: str | None) -> ClusterSchema | None:
    """The checked settings as the store's schema (None without log.cluster)."""
    if cluster is None:
        return None
    return ClusterSchema(cluster, keeper_path or DEFAULT_KEEPER_PATH)
