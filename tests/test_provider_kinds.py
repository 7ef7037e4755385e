"""The provider declarations (pygate/config/providers.py) are the one list of kinds:
the schema accepts exactly those, each has an adapter module of its name, and each has
its adapter test file."""

from __future__ import annotations

import typing
from pathlib import Path

from pygate.ai.providers import ADAPTERS
from pygate.config.ai_schema import Provider
from pygate.config.providers import PROVIDER_KINDS, PROVIDERS

TESTS = Path(__file__).resolve().parent


def test_schema_accepts_exactly_the_declared_kinds_in_order():
    kind = typing.get_type_hints(Provider)["kind"]
    assert typing.get_args(kind) == PROVIDER_KINDS == tuple(p.name for p in PROVIDERS)


def test_every_declared_kind_has_its_adapter_and_its_test_file():
    assert list(ADAPTERS) == list(PROVIDER_KINDS)
    for name, adapter in ADAPTERS.items():
        assert adapter.kind == name
        assert type(adapter).__module__ == f"pygate.ai.providers.{name}"
        assert (TESTS / f"test_provider_{name}.py").is_file(), name
