"""Config loading and validation.

loaded = load_config("gateway.yaml")   # raises ConfigError (one line per problem)
check_with_core(loaded)                # also let the Rust core compile it
loaded.core_json()                     # the core config handed to pygate._core
loaded.core_json(ai_listener)          # serve: AI routes to the listener it bound

Nothing here imports the AI runtime (pygate.ai): the `ai:` section's schema, checks and
core routes are ai_schema.py, ai_checks.py and ai_routes.py (tests/test_imports.py).
"""

from pygate.config.compile import compile_core_config, core_config_json
from pygate.config.errors import ConfigError, ConfigProblem
from pygate.config.loader import LoadedConfig, check_with_core, load_config
from pygate.config.schema import GatewayConfig

__all__ = [
    "ConfigError",
    "ConfigProblem",
    "GatewayConfig",
    "LoadedConfig",
    "check_with_core",
    "compile_core_config",
    "core_config_json",
    "load_config",
]
