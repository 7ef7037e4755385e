"""Load a config file: YAML -> schema -> plugins -> semantic checks -> (core check).

`load_config` does everything that needs only Python; `check_with_core` additionally
asks the Rust core to compile the result (route conflicts and the like), and maps the
core's error back to a line of the file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from pygate.config.ai_routes import AiListener
from pygate.config.compile import core_config_json
from pygate.config.convert import INVALID, Converter
from pygate.config.core_check import core_problem, core_problems
from pygate.config.errors import ConfigError, ConfigProblem
from pygate.config.log_cluster import cluster_schema
from pygate.config.paths import FieldPath
from pygate.config.schema import GatewayConfig, Route
from pygate.config.units import describe
from pygate.config.upstream_checks import resolve_ca_files
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

    def core_json(self, ai_listener: AiListener | None = None) -> str:
        """`ai_listener`: the AI listener serve bound; None compiles for checking."""
        if not self.plugins_loaded:
            raise RuntimeError("loaded with import_plugins=False: not fit to serve")
        return core_config_json(self.config, ai_listener)

    def summary(self) -> str:
        c = self.config
        return f"{len(c.routes)} routes, {len(c.upstreams)} upstreams, {len(c.consumers)} consumers"

    def core_error(self, exc: ValueError) -> ConfigError:
        """Turn a core ValueError ("routes[1].paths[0]: conflicts ...") into a ConfigError
        with every problem the core finds (it stops at its first; see core_check)."""
        from pygate.core import load_core

        first = core_problem(self.source, str(exc))
        try:
            problems = core_problems(load_core(), self.config, self.source, first_error=str(exc))
        except Exception:  # the first problem is what matters; never hide it
            problems = []
        return ConfigError(problems or [first])


def load_config(
    file: str,
    environ: Mapping[str, str] | None = None,
    *,
    import_plugins: bool = True,
    check_core: bool = False,
) -> LoadedConfig:
    """Read and validate `file`; raises ConfigError listing every problem found.

    `import_plugins=False` is for commands that only talk to a running gateway or its
    store (status, logs query/report, admin export/import): route plugin configs are
    then left out, unchecked, so module plugins are not imported (they need not be on
    this shell's PYTHONPATH) and no plugin reads its files or URLs. Such a result
    cannot be served or compiled (`core_json` refuses).

    `check_core=True` also has the Rust core compile the config (as `check_with_core`
    does), reporting its problems with the others; it may raise CoreUnavailable.
    """
    source = read_yaml(file, environ)
    return config_from_source(source, file, import_plugins=import_plugins, check_core=check_core)


def config_from_source(
    source: YamlSource, file: str, *, import_plugins: bool = True, check_core: bool = False
) -> LoadedConfig:
    """Validate already parsed config data as `load_config` does.

    `file` is the config file the result belongs to (relative paths are resolved
    against its directory); `source.file` is what messages name. The admin API
    validates its entities merged with the file's settings this way.

    Every stage reports all it finds, and the later ones still check what was valid
    (values that failed hold stand-ins; findings about them are dropped), so one run
    lists every problem, in file order, and one mistake is one problem.
    """
    if source.data is None:
        empty = source.problem((), "the file is empty; expected a mapping")
        raise ConfigError([*source.problems, empty])
    plugins_hook = _convert_plugins if import_plugins else _skip_plugins
    converter = Converter(source, field_hooks={(Route, "plugins"): plugins_hook})
    config = converter.struct(source.data, GatewayConfig, ())
    problems = [*source.problems, *converter.problems]
    if config is INVALID:  # the file is not a mapping
        raise ConfigError(_in_file_order(problems))

    if config.admin.token == "":
        config.admin.token = None
    base_dir = os.path.dirname(os.path.abspath(file))
    invalid = converter.invalid
    for path, message in semantic_problems(config, base_dir, invalid=invalid):
        if not _about_invalid(path, invalid):
            problems.append(source.problem(path, message))
    resolve_ca_files(config, base_dir)  # before the core reads them
    if check_core and import_plugins:
        problems.extend(_core_stage(config, source, problems))
    if problems:
        raise ConfigError(_in_file_order(problems))
    store = parse_store_url(config.log.store, base_dir)
    store = replace(store, cluster=cluster_schema(config.log.cluster, config.log.keeper_path))
    loaded = LoadedConfig(file=file, config=config, source=source, store=store)
    loaded.plugins_loaded = import_plugins
    return loaded


def _in_file_order(problems: list[ConfigProblem]) -> list[ConfigProblem]:
    return sorted(problems, key=lambda p: p.line or 0)


# Entries whose checks compare their own fields with each other (a template's `active`
# with its versions' numbers): when one field failed, the others are not judged.
_SELF_CHECKED_ENTRIES: tuple[FieldPath, ...] = (("ai", "templates"),)


def _about_invalid(path: FieldPath, invalid: set[FieldPath]) -> bool:
    """A finding at, under or above a value that failed: it would judge a stand-in."""
    if any(path[: len(bad)] == bad or bad[: len(path)] == path for bad in invalid):
        return True
    for section in _SELF_CHECKED_ENTRIES:
        entry = path[: len(section) + 1]
        if path[: len(section)] == section and len(entry) > len(section):
            if any(bad[: len(entry)] == entry for bad in invalid):
                return True
    return False


def _core_stage(
    config: GatewayConfig, source: YamlSource, known: list[ConfigProblem]
) -> list[ConfigProblem]:
    from pygate.core import CoreUnavailable, load_core

    try:
        core = load_core()
    except CoreUnavailable:
        if known:  # report what Python found; the core's verdict needs the core
            return []
        raise
    return core_problems(core, config, source, known)


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
    for name, plugin_raw in raw.items():
        plugin_path = (*path, str(name))
        try:
            # A registered name, or a module path ("package.module:Attribute") imported here.
            plugin = load_plugin(str(name))
        except PluginLoadError as exc:
            converter.report(plugin_path, str(exc))
            converter.invalid.add(plugin_path)
            continue
        # `key-auth:` with nothing after it enables the plugin with its defaults.
        plugin_config = {} if plugin_raw is None else plugin_raw
        value = converter.struct(plugin_config, plugin.schema, plugin_path)
        # Kept even when invalid: the route's other plugins look at which are enabled.
        validated[str(name)] = converter.accept(value, plugin_config, plugin.schema, plugin_path)
    return validated
