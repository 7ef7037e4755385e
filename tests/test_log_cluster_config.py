"""`log.cluster` / `log.keeper_path` config errors (`pygate check`): exit 2 with the file,
the line, the field path and what was expected; a good setting reaches the store."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.gateway import run_cli

from pygate.config import load_config
from pygate.logstore.cluster_ddl import ClusterSchema

BASE = """\
listen: 127.0.0.1:18080
workers: 1
upstreams: [{name: u, targets: ["127.0.0.1:9"]}]
routes: [{name: r, paths: ["/r/*"], upstream: u}]
log:
  store: STORE
"""
SERVER = "clickhouse://pygate:secret-pw@ch-s1-r1:8123/pygate"


def write(tmp_path: Path, store: str, extra: str) -> tuple[Path, str]:
    text = BASE.replace("STORE", store) + extra
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    return path, text


def line_of(text: str, needle: str) -> int:
    return next(i for i, t in enumerate(text.splitlines(), 1) if needle in t)


def test_cluster_on_the_embedded_store_is_refused(tmp_path):
    path, text = write(tmp_path, "chdb://./pygate-data", "  cluster: pygate\n")
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, (res.stdout, res.stderr)
    line = line_of(text, "cluster:")
    assert re.search(rf"{re.escape(str(path))}:{line}: log\.cluster", res.stderr), res.stderr
    assert (
        "needs a ClickHouse server store (log.store: clickhouse://...), not chdb://" in res.stderr
    )
    assert "ON CLUSTER" in res.stderr


BAD = {
    "hyphen": ("  cluster: my-cluster\n", "log.cluster", 'got "my-cluster"'),
    "digit_first": ("  cluster: 2shards\n", "log.cluster", 'a letter or "_"'),
    "quote": ('  cluster: "pygate\'; DROP"\n', "log.cluster", "ClickHouse cluster name"),
    "too_long": (f"  cluster: {'c' * 65}\n", "log.cluster", "at most 64 characters"),
    "relative_path": (
        "  cluster: pygate\n  keeper_path: clickhouse/tables\n",
        "log.keeper_path",
        "expected a Keeper path such as /clickhouse/tables",
    ),
    "trailing_slash": (
        "  cluster: pygate\n  keeper_path: /clickhouse/tables/\n",
        "log.keeper_path",
        'no trailing "/"',
    ),
    "dot_dot": ("  cluster: pygate\n  keeper_path: /a/../b\n", "log.keeper_path", "Keeper path"),
    "quote_in_path": (
        '  cluster: pygate\n  keeper_path: "/a\'b"\n',
        "log.keeper_path",
        "Keeper path",
    ),
    "path_without_cluster": (
        "  keeper_path: /clickhouse/tables\n",
        "log.keeper_path",
        "is only used with log.cluster",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_names_name_file_line_field_and_expected(tmp_path, case):
    extra, field, expected = BAD[case]
    path, text = write(tmp_path, SERVER, extra)
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, (res.stdout, res.stderr)
    key = field.split(".")[1] + ":"
    line = line_of(text, key)
    assert re.search(rf"{re.escape(str(path))}:{line}: {re.escape(field)}", res.stderr), res.stderr
    assert expected in res.stderr, res.stderr
    assert "secret-pw" not in res.stderr + res.stdout


def test_good_cluster_reaches_the_store_location(tmp_path):
    path, _ = write(tmp_path, SERVER, "  cluster: pygate\n")
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 0, res.stderr
    assert load_config(str(path)).store.cluster == ClusterSchema("pygate", "/clickhouse/tables")
    path, _ = write(tmp_path, SERVER, "  cluster: logs_eu\n  keeper_path: /ch/{cluster}/t\n")
    assert load_config(str(path)).store.cluster == ClusterSchema("logs_eu", "/ch/{cluster}/t")
    path, _ = write(tmp_path, SERVER, "")
    assert load_config(str(path)).store.cluster is None
