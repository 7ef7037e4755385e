"""Provider adapters, one module each; `ADAPTERS` maps a provider `kind` to its adapter.

Which kinds exist, and what each needs from its config, is declared in
pygate/config/providers.py (config validation reads it without importing this runtime);
each declared kind has a module here of the same name defining `ADAPTER`.
"""

from __future__ import annotations

from importlib import import_module

from pygate.ai.providers.base import Adapter
from pygate.config.providers import PROVIDER_KINDS


def _adapter(kind: str) -> Adapter:
    adapter = import_module(f"pygate.ai.providers.{kind}").ADAPTER
    if adapter.kind != kind:  # a copied module whose class kept its parent's kind
        raise RuntimeError(f"pygate.ai.providers.{kind} declares kind {adapter.kind!r}")
    return adapter


ADAPTERS: dict[str, Adapter] = {kind: _adapter(kind) for kind in PROVIDER_KINDS}
