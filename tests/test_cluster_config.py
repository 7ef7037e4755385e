"""`cluster:` config errors (`pygate check`): exit 2, the file, the line, the field path and
what was expected; a good cluster section passes."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from support.gateway import run_cli

BASE = """\
listen: 127.0.0.1:18080
workers: 1
upstreams: [{name: u, targets: ["127.0.0.1:9"]}]
routes:
  - name: r
    paths: ["/r/*"]
    upstream: u
    plugins:
      rate-limit: {rate: 300, per: 1m, by: route, scope: cluster}
"""
CLUSTER = """\
cluster:
  redis: {url}
  timeout: 50ms
  on_redis_down: fail_open
"""


def check(tmp_path: Path, text: str):
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    return path, run_cli("check", "--config", str(path))


@pytest.mark.parametrize(
    "url",
    [
        "redis://127.0.0.1:6379/0",
        "rediss://redis.internal:6380/2",
        "redis+cluster://10.0.0.1:7000,10.0.0.2:7001",
        "rediss+sentinel://s1:26379,s2:26379/mymaster/0",
    ],
)
def test_url_forms_pass(tmp_path, url):
    _, res = check(tmp_path, BASE + CLUSTER.format(url=url))
    assert res.returncode == 0, res.stderr


BAD = {
    "scheme": ("http://127.0.0.1:6379", "cluster.redis", "expected redis://HOST:PORT/DB"),
    "password_in_url": (
        "redis://:hunter2-secret@127.0.0.1:6379/0",
        "cluster.redis",
        "cluster.password",
    ),
    "sentinel_without_master": (
        "redis+sentinel://s1:26379",
        "cluster.redis",
        "redis+sentinel://HOST:PORT,HOST:PORT/MASTER/DB",
    ),
    "port": ("redis://127.0.0.1:port/0", "cluster.redis", "malformed redis:// URL"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_url_names_file_line_field_and_expected(tmp_path, case):
    url, field, expected = BAD[case]
    text = BASE + CLUSTER.format(url=url)
    path, res = check(tmp_path, text)
    assert res.returncode == 2, (res.stdout, res.stderr)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "redis:" in t)
    assert re.search(rf"{re.escape(str(path))}:{line}: {re.escape(field)}", res.stderr), res.stderr
    assert expected in res.stderr, res.stderr
    assert "hunter2-secret" not in res.stderr + res.stdout


def test_bad_policy_and_timeout(tmp_path):
    text = BASE + CLUSTER.format(url="redis://127.0.0.1:6379/0").replace(
        "fail_open", "fail_sometimes"
    ).replace("50ms", "soon")
    path, res = check(tmp_path, text)
    assert res.returncode == 2
    assert "cluster.on_redis_down" in res.stderr and "fail_closed" in res.stderr, res.stderr
    assert "cluster.timeout" in res.stderr, res.stderr


def test_cluster_scope_without_redis(tmp_path):
    path, res = check(tmp_path, BASE)
    assert res.returncode == 2
    assert f"{path}" in res.stderr
    assert "routes[0].plugins.rate-limit.scope" in res.stderr, res.stderr
    assert "cluster.redis" in res.stderr


def test_unknown_scope(tmp_path):
    path, res = check(tmp_path, BASE.replace("scope: cluster", "scope: global"))
    assert res.returncode == 2
    assert "routes[0].plugins.rate-limit.scope" in res.stderr, res.stderr
