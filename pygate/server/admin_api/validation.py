"""Validate an entity document together with the file's process settings.

The same code path as a config file: schema conversion (with every plugin's schema),
the semantic checks and, when the result is swapped in, the core's own compilation.
Nothing here knows the admin API: it turns data into a LoadedConfig or ConfigError.
"""

from __future__ import annotations

from typing import Any

from pygate.config import LoadedConfig
from pygate.config.loader import config_from_source
from pygate.config.yaml_source import YamlSource
from pygate.server.admin_api.document import Entities, merged


def effective_config(
    settings: dict[str, Any], entities: Entities, config_file: str, label: str
) -> LoadedConfig:
    """The config to serve: the file's `settings` with `entities`. Raises ConfigError.

    `label` is what messages name as the source (there are no line numbers: the
    entities come from the admin state, not from the file).
    """
    return config_from_source(YamlSource(label, merged(settings, entities)), config_file)
