"""SQL injection through log.cluster / log.keeper_path: both end up in DDL the gateway
runs with the sink user's DDL rights (ON CLUSTER NAME, Distributed('NAME', ...), the
Replicated engines' Keeper paths). Every payload is refused by `pygate check` (exit 2,
the field named), by the schema object itself (a caller that skips the config), and no
accepted value can leave its place in the generated DDL."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.gateway import run_cli

from pygate.logstore.cluster_ddl import ClusterSchema
from pygate.logstore.schema_migrations import apply_migrations

NAMES = [
    "pygate; DROP DATABASE pygate",
    "pygate ON CLUSTER other",
    "p`g",
    "pygate'",
    "pygate--",
    "pygate/*",
    "pygate\nDROP",
    "",
]
PATHS = [
    "/t') ENGINE = Memory --",
    "/t', 'r'); DROP TABLE pygate.requests; --",
    "/t\\'",
    "/t/../../other",
    "/t//x",
    "/t\n",
]

CONFIG = """\
listen: 127.0.0.1:18080
upstreams: [{{name: u, targets: ["127.0.0.1:9"]}}]
routes: [{{name: r, paths: ["/r/*"], upstream: u}}]
log:
  store: clickhouse://pygate:pw@127.0.0.1:8123/pygate
  cluster: {cluster}
  keeper_path: {path}
"""


def _check(tmp_path: Path, cluster: str, path: str):
    import json

    file = tmp_path / "gw.yaml"
    file.write_text(CONFIG.format(cluster=json.dumps(cluster), path=json.dumps(path)))
    return run_cli("check", "--config", str(file))


@pytest.mark.parametrize("name", NAMES)
def test_cluster_name_payloads_are_refused(tmp_path, name):
    res = _check(tmp_path, name, "/clickhouse/tables")
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "log.cluster" in res.stderr
    with pytest.raises(ValueError):
        ClusterSchema(name)


@pytest.mark.parametrize("path", PATHS)
def test_keeper_path_payloads_are_refused(tmp_path, path):
    res = _check(tmp_path, "pygate", path)
    assert res.returncode == 2, (res.stdout, res.stderr)
    assert "log.keeper_path" in res.stderr
    with pytest.raises(ValueError):
        ClusterSchema("pygate", path)


def test_accepted_values_stay_in_their_place():
    cluster = ClusterSchema("c_1", "/ch/{cluster}/t-1.x")
    statements: list[str] = []
    reads = iter([LookupError("new store")])

    def read_text(_sql: str) -> str:
        error = next(reads, None)
        if error is not None:
            raise error
        return ""

    apply_migrations(statements.append, read_text, retention_days=30, cluster=cluster)
    text = "\n".join(statements)
    # The name only as ON CLUSTER c_1 and Distributed('c_1', ...); the path only inside
    # the Replicated engines' first (quoted) argument.
    assert text.count("c_1") == text.count(" ON CLUSTER c_1") + text.count("Distributed('c_1'")
    assert text.count("/ch/{cluster}/t-1.x") == text.count("Replicated")
    assert all(
        "('/ch/{cluster}/t-1.x/" in line for line in text.splitlines() if "Replicated" in line
    )
