"""CLI commands act only on the gateway that serves the config they were given.

Gateway A is started and stopped; gateway B then holds A's admin port. Every command
run with A's config must refuse (exit 2, naming the gateway that answered) instead of
showing B's counters, B's call logs, B's entities, or replacing B's entities. Variants:
B in another directory with the same configured token, B next to A sharing A's
generated token file, and B with a token of its own.
"""

from __future__ import annotations

import uuid

import pytest
import yaml
from support.admin_api import AdminApi
from support.client import get
from support.configs import simple_config
from support.gateway import Gateway, run_cli

SHARED_TOKEN = "one-token-for-two-gateways"


def commands(config: str, tmp_path) -> dict[str, list[str]]:
    entities = tmp_path / "import.yaml"
    entities.write_text(yaml.safe_dump({"upstreams": [], "consumers": [], "routes": []}))
    sql = "SELECT count() AS n FROM pygate.requests"
    return {
        "status": ["status", "--config", config],
        "logs query": ["logs", "query", "--config", config, sql],
        "logs report": ["logs", "report", "traffic", "--config", config, "--since", "1h"],
        "admin export": ["admin", "export", "--config", config],
        "admin import": ["admin", "import", "--config", config, str(entities)],
    }  # fmt: skip


def start_a_then_b(tmp_path, upstreams, *, a_admin: dict, b_admin: dict, same_dir: bool):
    """A serves once (leaving its call logs and state), stops; B takes A's admin port."""
    a = Gateway(tmp_path / "a", simple_config(upstreams, admin=dict(a_admin)))
    a.start()
    tag = uuid.uuid4().hex[:8]
    assert get(a.url(f"/echo/a-{tag}")).status == 200
    a.stop()
    b_cfg = simple_config(upstreams, admin={**b_admin, "listen": f"127.0.0.1:{a.admin_port}"})
    b_cfg["consumers"] = [{"name": "b-only", "keys": ["b-only-key"]}]
    if same_dir:  # next to A: its own state and store, A's token file
        b_cfg["admin"]["state"] = "b-admin.db"
        b_cfg["log"] = {"store": "chdb://./data-b", "flush_interval": "200ms"}
    b = Gateway(tmp_path / ("a" if same_dir else "b"), b_cfg)
    if same_dir:
        b.config_path = b.workdir / "b.yaml"
        b.log_path = b.workdir / "b.log"
    b.start()
    for n in range(3):
        assert get(b.url(f"/echo/b-{tag}-{n}")).status == 200
    return a, b


@pytest.mark.parametrize(
    "variant",
    [
        ("same configured token", {"token": SHARED_TOKEN}, {"token": SHARED_TOKEN}, False),
        ("one generated token file", {}, {}, True),
    ],
    ids=lambda v: v[0],
)
def test_a_command_refuses_the_gateway_of_another_config(tmp_path, upstreams, variant):
    _, a_admin, b_admin, same_dir = variant
    a, b = start_a_then_b(tmp_path, upstreams, a_admin=a_admin, b_admin=b_admin, same_dir=same_dir)
    try:
        before = AdminApi(b, b.admin_token).ok("GET", "/config?format=json")
        assert [c["name"] for c in before["consumers"]] == ["b-only"]
        for name, args in commands(str(a.config_path), tmp_path).items():
            res = run_cli(*args)
            assert res.returncode == 2, (name, res.returncode, res.stdout, res.stderr)
            assert "another gateway holds this admin port" in res.stderr, (name, res.stderr)
            assert str(b.config_path.resolve()) in res.stderr, (name, res.stderr)
            assert "b-only" not in res.stdout and "requests_total" not in res.stdout, name
        # The import was refused: B still has its entities.
        assert AdminApi(b, b.admin_token).ok("GET", "/config?format=json") == before
        # B's own config is served by B: its commands work.
        for name, args in commands(str(b.config_path), tmp_path).items():
            if name == "admin import":
                continue
            res = run_cli(*args)
            assert res.returncode == 0, (name, res.stderr)
        assert b.status()["config_file"] == str(b.config_path.resolve())
    finally:
        b.stop()
        b.kill()


def test_a_gateway_with_another_token_is_refused_too(tmp_path, upstreams):
    a, b = start_a_then_b(tmp_path, upstreams, a_admin={"token": "token-of-a"},
                          b_admin={"token": "token-of-b"}, same_dir=False)  # fmt: skip
    try:
        for name, args in commands(str(a.config_path), tmp_path).items():
            res = run_cli(*args)
            assert res.returncode != 0, (name, res.stdout)
            assert "b-only" not in res.stdout and "requests_total" not in res.stdout, name
            assert "is it the gateway of this config?" in res.stderr, (name, res.stderr)
    finally:
        b.stop()
        b.kill()


def test_a_copy_of_the_config_elsewhere_is_another_config(tmp_path, upstreams):
    a = Gateway(tmp_path / "a", simple_config(upstreams, admin={"token": SHARED_TOKEN}))
    a.start()
    try:
        copy = tmp_path / "elsewhere" / "gateway.yaml"
        copy.parent.mkdir()
        copy.write_text(a.config_path.read_text())
        res = run_cli("status", "--config", str(copy))
        assert res.returncode == 2 and str(a.config_path.resolve()) in res.stderr, res.stderr
        # A symlink to the served file (next to it: the same relative store) is that file.
        link = a.workdir / "link.yaml"
        link.symlink_to(a.config_path)
        res = run_cli("status", "--config", str(link))
        assert res.returncode == 0, res.stderr
    finally:
        a.stop()
        a.kill()
