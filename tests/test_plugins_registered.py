"""Tests found by feature: every plugin the registry knows (native and built-in Python,
pygate/plugins/registry.py) has its own test file, tests/test_plugin_<name>.py with the
name's dashes as underscores, and every such file is a registered plugin's (what tests
several plugins at once is in test_plugin_combinations.py)."""

from __future__ import annotations

from pathlib import Path

from pygate.plugins import native_plugins, plugin_names, python_plugins

TESTS = Path(__file__).resolve().parent
NOT_ONE_PLUGIN = {"test_plugin_combinations.py"}


def file_for(name: str) -> str:
    return f"test_plugin_{name.replace('-', '_')}.py"


def test_every_registered_plugin_has_its_file_for():
    names = plugin_names()
    assert {p.name for p in native_plugins()} | {p.name for p in python_plugins()} == set(names)
    missing = [name for name in names if not (TESTS / file_for(name)).is_file()]
    assert missing == [], f"plugins without tests/{file_for('<name>')}: {missing}"
    for name in names:
        text = (TESTS / file_for(name)).read_text()
        assert name in text.partition("\n\n")[0], f"{file_for(name)}'s docstring names {name}"


def test_every_plugin_test_file_is_a_registered_plugins():
    expected = {file_for(name) for name in plugin_names()} | NOT_ONE_PLUGIN
    stray = sorted(p.name for p in TESTS.glob("test_plugin_*.py") if p.name not in expected)
    assert stray == [], f"test files named for no registered plugin: {stray}"
