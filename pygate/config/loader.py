"""Load a config file: YAML -> schema -> plugins -> semantic checks -> (core check).

`load_config` does everything that needs only Python; `check_with_core` additionally
asks the Rust core to compile the result (route conflicts and the like), and maps the
core's error back to a line of the file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pygate.config.compile import core_config_json, user_path
from pygate.config.convert import INVALID, Converter
from pygate.config.errors import ConfigError, ConfigProblem
from pygate.config.paths import FieldPath, parse_path
from pygate.config.schema import GatewayConfig, Route
from pygate.config.units import describe
from pygate.config.validate import semantic_problems
from pygate.config.yaml_source import YamlSource, read_yaml
from pygate.logstore.url import StoreLocation, parse_store_url
from pygate.plugins import PluginLoadError, load_plugin


@dataclass(slots=True)
class LoadedConfig:
    file: str  # as the user named it, for messages
    config: GatewayConfig
    source: YamlSource
    store: StoreLocation  # log store with its path made absolute
    # False: route plugins were left out (load_config(import_plugins=False)).
    plugins_loaded: bool = True

    @property
    def abspath(self) -> str:
        return os.path.abspath(self.file)

    def core_json(self) -> str:
        if not self.plugins_loaded:
            raise RuntimeError("loaded with import_plugins=False: not fit to serve")
        return core_config_json(self.config)

    def summary(self) -> str:
        c = self.config
        return f"{len(c.routes)} routes, {len(c.upstreams)} upstreams, {len(c.consumers)} consumers"

    def core_error(self, exc: ValueError) -> ConfigError:
        """Turn a core ValueError ("routes[1].paths[0]: conflicts ...") into a ConfigError."""
        return ConfigError([core_problem(self.source, str(exc))])


def load_config(
    file: str, environ: Mapping[str, str] | None = None, *, import_plugins: bool = True
) -> LoadedConfig:
    """Read and validate `file`; raises ConfigError listing every problem found.

    `import_plugins=False` is for commands that only talk to a running gateway or its
    store (status, logs query/report, admin export/import): route plugin configs are
    then left out, unchecked, so module plugins are not imported (they need not be on
    this shell's PYTHONPATH) and no plugin reads its files or URLs. Such a result
    cannot be served or compiled (`core_json` refuses).
    """
    return config_from_source(read_yaml(file, environ), file, import_plugins=import_plugins)


def config_from_source(source: YamlSource, file: str, *, import_plugins: bool = True) -> LoadedConfig:
    """Validate already parsed config data as `load_config` does.

    `file` is the config file the result belongs to (relative paths are resolved
    against its directory); `source.file` is what messages name. The admin API
    validates its entities merged with the file's settings this way.
    """
    if source.data is None:
        raise ConfigError([source.problem((), "the file is empty; expected a mapping")])
    plugins_hook = _convert_plugins if import_plugins else _skip_plugins
    converter = Converter(source, field_hooks={(Route, "plugins"): plugins_hook})
    config = converter.struct(source.data, GatewayConfig, ())
    if converter.problems:
        raise ConfigError(_in_file_order(converter.problems))

    if config.admin.token == "":
        config.admin.token = None
    base_dir = os.path.dirname(os.path.abspath(file))
    problems = [source.problem(path, msg) for path, msg in semantic_problems(config, base_dir)]
    if problems:
        raise ConfigError(_in_file_order(problems))
    store = parse_store_url(config.log.store, base_dir)
    loaded = LoadedConfig(file=file, config=config, source=source, store=store)
    loaded.plugins_loaded = import_plugins
    return loaded


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: p.line or 0)


def check_with_core(loaded: LoadedConfig) -> None:
    """Have the Rust core compile the config. Raises ConfigError or CoreUnavailable."""
    from pygate.core import load_core

    core = load_core()
    try:
        core.check_config(loaded.core_json())
    except ValueError as exc:
        raise loaded.core_error(exc) from exc


def _skip_plugins(converter: Converter, raw: Any, path: FieldPath) -> Any:
    """`routes[i].plugins` left out unchecked (load_config(import_plugins=False))."""
    return {}


def _convert_plugins(converter: Converter, raw: Any, path: FieldPath) -> Any:
    """Validate `routes[i].plugins`: each entry against its own plugin's schema."""
    if not isinstance(raw, dict):
        converter.report(
            path, f"expected a mapping of plugin names to configs, got {describe(raw)}"
        )
        return INVALID
    validated = {}
    ok = True
    for name, plugin_raw in raw.items():
        plugin_path = (*path, str(name))
        try:
            # A registered name, or a module path ("package.module:Attribute") imported here.
            plugin = load_plugin(str(name))
        except PluginLoadError as exc:
            converter.report(plugin_path, str(exc))
            ok = False
            continue
        # `key-auth:` with nothing after it enables the plugin with its defaults.
        value = converter.struct(
            {} if plugin_raw is None else plugin_raw, plugin.schema, plugin_path
        )
        if value is INVALID:
            ok = False
        else:
            validated[str(name)] = value
    return validated if ok else INVALID


_CORE_MESSAGE = re.compile(
    r"^(?P<path>[A-Za-z_][\w\-]*(?:\[\d+\]|\.[\w\-]+)*): (?P<rest>.+)$", re.S
)


def core_problem(source: YamlSource, message: str) -> ConfigProblem:
    match = _CORE_MESSAGE.match(message)
    core_path = parse_path(match.group("path")) if match else None
    if match is None or core_path is None:
        return ConfigProblem(source.file, None, (), message)
    path = user_path(core_path)
    return ConfigProblem(source.file, source.line_of(path), path, match.group("rest"))
