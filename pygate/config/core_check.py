"""The core's own compilation as the last validation stage, collecting every problem.

The core's `check_config` stops at its first error. To report them all, the entity it
names is taken out (a route) or replaced by a harmless stand-in of the same name (an
upstream or consumer, so that nothing referring to it fails in turn), and the rest is
checked again, until the core accepts what is left.

Entities that the Python stages already found wrong are not shown to the core at all,
since their stand-in values would only produce errors that follow from the first one:
such routes are left out, such upstreams and consumers replaced by stand-ins, and such
process settings (listen, limits, ...) by their defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

import msgspec

from pygate.config.compile import compile_core_config, user_path
from pygate.config.errors import ConfigProblem
from pygate.config.paths import FieldPath, parse_path
from pygate.config.schema import GatewayConfig, Upstream
from pygate.config.units import ListenAddr, Name, TargetAddr
from pygate.config.validate import stand_in_consumer
from pygate.config.yaml_source import YamlSource

# More than this many core errors in one config: the rest can wait for the next run.
MAX_CORE_PROBLEMS = 50
_SECTIONS = ("upstreams", "consumers", "routes")
_STAND_IN_LISTEN = ListenAddr("127.0.0.1:0")

_CORE_MESSAGE = re.compile(
    r"^(?P<path>[A-Za-z_][\w\-]*(?:\[\d+\]|\.[\w\-]+)*): (?P<rest>.+)$", re.S
)


def split_core_message(message: str) -> tuple[FieldPath | None, str]:
    """ "routes[1].paths[0]: conflicts ..." -> (("routes", 1, "paths", 0), "conflicts ...")."""
    match = _CORE_MESSAGE.match(message)
    core_path = parse_path(match.group("path")) if match else None
    if match is None or core_path is None:
        return None, message
    return core_path, match.group("rest")


def core_problem(source: YamlSource, message: str) -> ConfigProblem:
    """One core error message as a problem at its line of the file."""
    core_path, rest = split_core_message(message)
    if core_path is None:
        return ConfigProblem(source.file, None, (), message)
    path = user_path(core_path)
    return ConfigProblem(source.file, source.line_of(path), path, rest)


def core_problems(
    core: Any,
    config: GatewayConfig,
    source: YamlSource,
    known: Sequence[ConfigProblem] = (),
    first_error: str | None = None,
) -> list[ConfigProblem]:
    """Every problem the core finds in `config`, apart from those `known` already.

    `first_error` is the core's answer to the whole config when the caller has it
    (a failed swap): the search goes on from there.
    """
    checker = _CoreChecker(config, [p.path for p in known])
    try:
        compiled = checker.compile()
    except Exception:
        # Stand-ins the Python stages left may not compile; those problems come first.
        if known:
            return []
        raise
    problems: list[ConfigProblem] = []
    message = first_error
    for _ in range(MAX_CORE_PROBLEMS):
        if message is None:
            try:
                core.check_config(json.dumps(compiled))
                break
            except ValueError as exc:
                message = str(exc)
        core_path, rest = split_core_message(message)
        yaml_path = checker.take_out(compiled, core_path)
        if yaml_path is None:  # not an entity or setting we can set aside
            problems.append(core_problem(source, message))
            break
        if yaml_path == ("ai",):
            rest = f"{message.partition(': ')[0]} (made for the AI gateway): {rest}"
        message = None
        found = ConfigProblem(source.file, source.line_of(yaml_path), yaml_path, rest)
        if not checker.tainted(yaml_path) and found not in problems:
            problems.append(found)
    return problems


class _CoreChecker:
    def __init__(self, config: GatewayConfig, known_paths: list[FieldPath]) -> None:
        self.config = config
        self.known_paths = known_paths
        # compiled section index -> index in the file (None: added by pygate, e.g. AI)
        self.origin: dict[str, list[int | None]] = {}
        self.stand_ins: dict[str, list[dict[str, Any]]] = {}
        self.defaults = compile_core_config(GatewayConfig(listen=_STAND_IN_LISTEN))

    def tainted(self, prefix: FieldPath) -> bool:
        """A problem was already reported at or under `prefix`, or above it."""
        return any(
            path[: len(prefix)] == prefix or prefix[: len(path)] == path
            for path in self.known_paths
            if path
        )

    def compile(self) -> dict[str, Any]:
        config = self.config
        upstreams = [
            _stand_in_upstream(u.name, i) if self.tainted(("upstreams", i)) else u
            for i, u in enumerate(config.upstreams)
        ]
        consumers = [
            stand_in_consumer(i) if self.tainted(("consumers", i)) else c
            for i, c in enumerate(config.consumers)
        ]
        if ("consumers",) in self.known_paths:  # the section is no list: as if one
            consumers = [stand_in_consumer(0)]
        # Routes on an unknown upstream are Python's to report (or, when an upstream's
        # name failed, not to be judged): the core would only repeat it.
        names = {u.name for u in upstreams}
        routes = [
            i
            for i, r in enumerate(config.routes)
            if not self.tainted(("routes", i)) and r.upstream in names
        ]
        settings: dict[str, Any] = {}
        for info in msgspec.structs.fields(GatewayConfig):
            if info.name not in _SECTIONS and self.tainted((info.encode_name,)):
                settings[info.name] = getattr(GatewayConfig(listen=_STAND_IN_LISTEN), info.name)
        shown = msgspec.structs.replace(
            config,
            routes=[config.routes[i] for i in routes],
            upstreams=upstreams,
            consumers=consumers,
            **settings,
        )
        compiled = compile_core_config(shown)
        stand_ins = compile_core_config(
            msgspec.structs.replace(
                shown,
                routes=[],
                upstreams=[_stand_in_upstream(u.name, i) for i, u in enumerate(upstreams)],
                consumers=[stand_in_consumer(i) for i in range(len(consumers))],
            )
        )
        self.stand_ins = {s: stand_ins[s] for s in ("upstreams", "consumers")}
        added = {s: len(compiled[s]) - n for s, n in (("routes", len(routes)),
                 ("upstreams", len(upstreams)), ("consumers", len(consumers)))}  # fmt: skip
        self.origin = {
            "routes": [*routes, *[None] * added["routes"]],
            "upstreams": [*range(len(upstreams)), *[None] * added["upstreams"]],
            "consumers": [*range(len(consumers)), *[None] * added["consumers"]],
        }
        return compiled

    def take_out(self, compiled: dict[str, Any], core_path: FieldPath | None) -> FieldPath | None:
        """Set aside what `core_path` names; returns its path in the file (None: cannot)."""
        if not core_path:
            return None
        section = core_path[0]
        if section in _SECTIONS and len(core_path) > 1 and isinstance(core_path[1], int):
            index = core_path[1]
            if index >= len(compiled[section]):
                return None
            original = self.origin[section][index]
            self._set_aside(compiled, section, index)
            if original is None:  # made by pygate for the ai: section
                return ("ai",)
            return user_path((section, original, *core_path[2:]))
        key = core_path[0]
        if key in self.defaults and compiled.get(key) != self.defaults[key]:
            compiled[key] = self.defaults[key]
            return user_path(core_path)
        return None

    def _set_aside(self, compiled: dict[str, Any], section: str, index: int) -> None:
        original = self.origin[section][index]
        entry = compiled[section][index]
        if section != "routes" and original is not None:
            stand_in = self.stand_ins[section][original]
            if entry != stand_in:  # replaced once; if the stand-in fails too, it goes
                compiled[section][index] = stand_in
                return
        del compiled[section][index]
        del self.origin[section][index]
        if section == "upstreams":  # its routes would now fail for want of it
            keep = [i for i, r in enumerate(compiled["routes"]) if r["upstream"] != entry["name"]]
            compiled["routes"] = [compiled["routes"][i] for i in keep]
            self.origin["routes"] = [self.origin["routes"][i] for i in keep]


def _stand_in_upstream(name: Any, index: int) -> Upstream:
    usable = isinstance(name, str) and name
    return Upstream(
        name=Name(name if usable else f"pygate-stand-in-{index}"),
        targets=[TargetAddr("127.0.0.1:1")],
    )
