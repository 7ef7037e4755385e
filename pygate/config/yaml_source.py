"""Read a YAML config into plain data plus a map from field paths to line numbers.

We compose the node graph first (instead of `yaml.safe_load`) because nodes carry
source marks: that is what lets every later error, including the ones the Rust core
raises, point at a line. Environment references are expanded on the nodes, before
construction, so `workers: ${WORKERS}` still becomes an integer.

Problems found on the way (an unset variable, a duplicate key) are collected in
`YamlSource.problems` rather than raised, so the later stages still check the rest.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pygate.config.envsubst import UnsetVariableError, has_references, substitute
from pygate.config.errors import ConfigError, ConfigProblem
from pygate.config.paths import FieldPath

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass(slots=True)
class YamlSource:
    """Parsed YAML data and where each field came from."""

    file: str  # as the user named it; used in messages
    data: Any
    lines: dict[FieldPath, int] = field(default_factory=dict)
    # Found while reading (unset ${VAR}s, duplicate keys); the file is still usable.
    problems: list[ConfigProblem] = field(default_factory=list)
    # Values whose ${VAR} could not be expanded: already reported, checked no further.
    unresolved: set[FieldPath] = field(default_factory=set)

    def line_of(self, path: FieldPath) -> int | None:
        """Line of `path`, or of its nearest ancestor that exists in the file."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def problem(self, path: FieldPath, message: str) -> ConfigProblem:
        return ConfigProblem(self.file, self.line_of(path), path, message)


def read_yaml(file: str, environ: Mapping[str, str] | None = None) -> YamlSource:
    """Read and parse `file`; raises ConfigError for I/O and syntax errors.

    `${VAR}` and duplicate-key problems are in the result's `problems`.
    """
    try:
        with open(file, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ConfigError([ConfigProblem(file, None, (), f"cannot read file: {reason}")]) from exc
    except UnicodeDecodeError as exc:
        raise ConfigError([ConfigProblem(file, None, (), "file is not UTF-8 text")]) from exc
    return parse_yaml(text, file, os.environ if environ is None else environ)


def parse_yaml(text: str, file: str, environ: Mapping[str, str]) -> YamlSource:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        source = YamlSource(file, None)
        if root is not None:
            _Walker(loader, source, environ, source.problems).walk(root, ())
        source.data = loader.construct_document(root) if root is not None else None
        return source
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError([ConfigProblem(file, line, (), f"invalid YAML: {what}")]) from exc
    except yaml.YAMLError as exc:
        raise ConfigError([ConfigProblem(file, None, (), f"invalid YAML: {exc}")]) from exc
    finally:
        loader.dispose()


class _Walker:
    """One pass over the node graph: record lines, expand `${VAR}`, catch duplicate keys."""

    def __init__(
        self,
        loader: yaml.SafeLoader,
        source: YamlSource,
        environ: Mapping[str, str],
        problems: list[ConfigProblem],
    ) -> None:
        self.loader = loader
        self.source = source
        self.environ = environ
        self.problems = problems
        # Aliases share node objects; expanding a node twice would re-expand the
        # value of a variable, and walking it twice could loop on recursive anchors.
        self.seen: set[int] = set()

    def walk(self, node: yaml.Node, path: FieldPath) -> None:
        self.source.lines.setdefault(path, node.start_mark.line + 1)
        if id(node) in self.seen:
            return
        self.seen.add(id(node))
        if isinstance(node, yaml.ScalarNode):
            self._expand(node, path)
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self.walk(item, (*path, index))
        elif isinstance(node, yaml.MappingNode):
            self._report_duplicate_keys(node, path)
            # Resolve `<<` merge keys now so the keys we index are the ones that
            # construction produces. Merged entries come first and later entries
            # win, so walk backwards and skip keys already taken.
            self.loader.flatten_mapping(node)
            taken: set[str] = set()
            for key_node, value_node in reversed(node.value):
                key = _key_text(key_node)
                if key in taken:
                    continue
                taken.add(key)
                child = (*path, key)
                self.source.lines.setdefault(child, key_node.start_mark.line + 1)
                self.walk(value_node, child)

    def _report_duplicate_keys(self, node: yaml.MappingNode, path: FieldPath) -> None:
        # PyYAML silently keeps the last of two equal keys; in a gateway config that
        # hides mistakes such as a second `plugins:` block, so it is an error here.
        # Keys brought in by a `<<` merge may be overridden; that is what merges are for.
        seen: set[str] = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE_TAG:
                continue
            key = _key_text(key_node)
            if key in seen:
                self.problems.append(
                    ConfigProblem(
                        self.source.file,
                        key_node.start_mark.line + 1,
                        (*path, key),
                        "duplicate key; each key may appear once per mapping",
                    )
                )
            seen.add(key)

    def _expand(self, node: yaml.ScalarNode, path: FieldPath) -> None:
        if node.tag != _STR_TAG or not has_references(node.value):
            return
        try:
            node.value = substitute(node.value, self.environ)
        except UnsetVariableError as exc:
            line = node.start_mark.line + 1
            self.problems.append(ConfigProblem(self.source.file, line, path, str(exc)))
            self.source.unresolved.add(path)
            return
        if node.style is None:
            # A plain (unquoted) scalar is typed by its text, as if the value had
            # been written there: `${PORT}` -> int, `${DEBUG:-false}` -> bool.
            node.tag = self.loader.resolve(yaml.ScalarNode, node.value, (True, False))


def _key_text(key_node: yaml.Node) -> str:
    return key_node.value if isinstance(key_node, yaml.ScalarNode) else str(key_node.value)
