"""Provider adapters, one module each; `ADAPTERS` maps a provider `kind` to its adapter."""

from __future__ import annotations

from importlib import import_module

from pygate.ai.providers.base import Adapter
from pygate.config.ai_schema import PROVIDER_KINDS

ADAPTERS: dict[str, Adapter] = {
    kind: import_module(f"pygate.ai.providers.{kind}").ADAPTER for kind in PROVIDER_KINDS
}
