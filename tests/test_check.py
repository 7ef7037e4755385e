"""`pygate check` (and `serve`) on good and bad configs: exit 2, file and field path named."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.gateway import cli_env, run_cli

REPO = Path(__file__).resolve().parent.parent

GOOD = """\
listen: 127.0.0.1:18080
workers: 1
admin:
  listen: 127.0.0.1:19180
upstreams:
  - name: items
    targets: ["127.0.0.1:9001", {addr: "127.0.0.1:9002", weight: 3}]
    balance: weighted
  - name: other
    targets: ["127.0.0.1:9003"]
consumers:
  - name: alice
    keys: ["alice-key-1"]
routes:
  - name: items-api
    paths: ["/api/items", "/api/items/{id}"]
    methods: [GET, POST]
    upstream: items
    plugins:
      key-auth: {hide_credentials: true}
      rate-limit: {rate: 100, per: 1s, burst: 20, by: consumer}
  - name: other
    paths: ["/other/*"]
    upstream: other
"""


def write(tmp_path: Path, text: str, name: str = "gw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def check(path: Path, env: dict[str, str] | None = None):
    if env is None:
        return run_cli("check", "--config", str(path))
    return subprocess.run(
        [sys.executable, "-m", "pygate", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**cli_env(), **env},
    )


def test_good_config(tmp_path):
    path = write(tmp_path, GOOD)
    res = check(path)
    assert res.returncode == 0, res.stderr
    assert f"config OK: {path} (2 routes, 2 upstreams, 1 consumers)" in res.stdout + res.stderr


def test_env_substitution_with_default(tmp_path):
    text = GOOD.replace('"127.0.0.1:9003"', '"${PYGATE_TEST_OTHER:-127.0.0.1:9003}"')
    res = check(write(tmp_path, text), env={})
    assert res.returncode == 0, res.stderr


def test_unset_env_without_default_names_the_field(tmp_path):
    text = GOOD.replace('"127.0.0.1:9003"', '"${PYGATE_TEST_UNSET_VAR}"')
    env = {k: v for k, v in os.environ.items() if k != "PYGATE_TEST_UNSET_VAR"}
    path = write(tmp_path, text)
    res = subprocess.run(
        [sys.executable, "-m", "pygate", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 2
    assert str(path) in res.stderr or path.name in res.stderr
    assert "upstreams[1].targets[0]" in res.stderr
    assert "PYGATE_TEST_UNSET_VAR" in res.stderr


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


BAD_CASES = {
    # name: (replace this, with that, expected field path in the message)
    "rate_not_int": ("rate: 100,", 'rate: "fast",', "routes[0].plugins.rate-limit.rate"),
    "unknown_upstream": ("upstream: other\n", "upstream: nope\n", "routes[1].upstream"),
    "unknown_plugin": ("key-auth: {", "kee-auth: {", "routes[0].plugins"),
    "bad_balance": ("balance: weighted", "balance: fastest", "upstreams[0].balance"),
    "bad_duration": ("per: 1s", "per: soon", "routes[0].plugins.rate-limit.per"),
    "bad_listen": ("listen: 127.0.0.1:18080", "listen: not-an-address", "listen"),
    "duplicate_upstream": (
        "- name: other\n    targets",
        "- name: items\n    targets",
        "upstreams[1].name",
    ),
    "path_conflict": ('paths: ["/other/*"]', 'paths: ["/api/items/{id}"]', "routes[1].paths[0]"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_config_exit_2_names_file_and_field(tmp_path, case):
    old, new, field = BAD_CASES[case]
    assert old in GOOD
    text = GOOD.replace(old, new, 1)
    path = write(tmp_path, text)
    res = check(path)
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    assert lines, res.stderr
    assert any(str(path) in line and field in line for line in lines), (field, res.stderr)


def test_error_line_number_points_at_the_bad_value(tmp_path):
    text = GOOD.replace("rate: 100,", 'rate: "fast",')
    path = write(tmp_path, text)
    res = check(path)
    assert res.returncode == 2
    line = line_of(text, 'rate: "fast"')
    assert re.search(
        rf"{re.escape(str(path))}:{line}: routes\[0\]\.plugins\.rate-limit\.rate", res.stderr
    ), res.stderr


def test_rate_limit_by_consumer_requires_key_auth(tmp_path):
    text = GOOD.replace("      key-auth: {hide_credentials: true}\n", "")
    res = check(write(tmp_path, text))
    assert res.returncode == 2
    assert "routes[0].plugins" in res.stderr


def test_duplicate_consumer_keys(tmp_path):
    text = GOOD.replace(
        '    keys: ["alice-key-1"]\n',
        '    keys: ["alice-key-1"]\n  - name: bob\n    keys: ["alice-key-1"]\n',
    )
    res = check(write(tmp_path, text))
    assert res.returncode == 2
    assert "consumers[1].keys[0]" in res.stderr


def test_yaml_syntax_error_names_the_file(tmp_path):
    path = write(tmp_path, GOOD + "routes: [unclosed\n")
    res = check(path)
    assert res.returncode == 2
    assert str(path) in res.stderr


def test_missing_file(tmp_path):
    res = check(tmp_path / "absent.yaml")
    assert res.returncode == 2
    assert "absent.yaml" in res.stderr


def test_several_errors_one_line_each(tmp_path):
    text = GOOD.replace("rate: 100,", 'rate: "fast",').replace("balance: weighted", "balance: x")
    res = check(write(tmp_path, text))
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    assert len(lines) >= 2, res.stderr


def test_serve_refuses_a_bad_config_with_exit_2(tmp_path):
    path = write(tmp_path, GOOD.replace("rate: 100,", 'rate: "fast",'))
    res = run_cli("serve", "--config", str(path), timeout=120)
    assert res.returncode == 2
    assert "routes[0].plugins.rate-limit.rate" in res.stderr
    assert "serving on" not in res.stderr


def test_bundled_example_configs_are_valid():
    examples = sorted((REPO / "examples").glob("*.yaml"))
    good = [p for p in examples if "invalid" not in p.name and "bad" not in p.name]
    assert good, "examples/*.yaml missing"
    for path in good:
        res = check(path)
        assert res.returncode == 0, (path, res.stderr)


def test_bundled_invalid_example_reports_every_problem():
    path = REPO / "examples" / "invalid.yaml"
    if not path.exists():
        pytest.skip("no examples/invalid.yaml")
    res = check(path)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    assert len(lines) >= 3, res.stderr
    assert all("invalid.yaml" in line for line in lines), lines


def test_deploy_example_config_is_valid():
    env = {"PYGATE_ADMIN_TOKEN": "t0ken", "PYGATE_KEY_APP1": "k3y"}
    res = check(REPO / "deploy" / "gateway.yaml", env=env)
    assert res.returncode == 0, res.stderr


def test_deploy_example_config_requires_its_secrets(tmp_path):
    env = {k: v for k, v in cli_env().items() if not k.startswith("PYGATE_")}
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "pygate",
            "check",
            "--config",
            str(REPO / "deploy" / "gateway.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert res.returncode == 2
    assert "PYGATE_ADMIN_TOKEN" in res.stderr


def test_readme_config_reference_is_a_valid_config(tmp_path):
    # The documented reference config must stay in step with what `check` accepts.
    readme = (REPO / "README.md").read_text()
    section = readme.split("## Configuration reference", 1)[1]
    block = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    path = write(tmp_path, block)
    res = check(path)
    assert res.returncode == 0, res.stderr
    assert "(1 routes, 1 upstreams, 1 consumers)" in res.stdout + res.stderr
