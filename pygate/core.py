"""Access to the Rust extension `pygate._core`, imported only when needed.

Everything that does not serve traffic (config loading, the log store, the CLI's
status and query commands) must keep working when the extension is not built, so
nothing imports `pygate._core` at module level.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class CoreUnavailable(RuntimeError):
    pass


def load_core() -> ModuleType:
    try:
        return importlib.import_module("pygate._core")
    except ImportError as exc:
        raise CoreUnavailable(
            f"the Rust core (pygate._core) is not available: {exc}; "
            "build it with `pip install -e .` or `maturin develop --release`"
        ) from exc
