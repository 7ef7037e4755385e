"""The package's import structure: config is free of the AI runtime, no import cycles.

- Checking a config (what `pygate check` does) imports neither aiohttp nor a log
  shipper nor any of the AI gateway's runtime (pygate.ai): the `ai:` section's schema,
  checks and core routes are pure data in pygate.config.
- No module of pygate/ is part of an import-time cycle. Imports inside functions run
  when called and do not count; `if TYPE_CHECKING:` blocks never run.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import textwrap
from pathlib import Path

from support.gateway import cli_env

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "pygate"

AI_CONFIG = """\
listen: 127.0.0.1:18080
admin: {listen: "127.0.0.1:19180"}
consumers:
  - {name: tina, keys: [tina-key]}
upstreams:
  - {name: items, targets: ["127.0.0.1:9001"]}
routes:
  - name: items
    paths: ["/items/*"]
    upstream: items
    plugins: {key-auth: {}, rate-limit: {rate: 10, per: 1s, by: consumer}}
ai:
  providers:
    - {name: openai, kind: openai, base_url: "http://127.0.0.1:1", keys: [sk-test]}
  models:
    - {name: fast, deployments: [{model: openai/gpt-4o-mini}]}
  templates:
    - name: sentiment
      path: /ai/sentiment
      model: fast
      split: {1: 50, 2: 50}
      versions:
        - {version: 1, prompt: "Classify: {{text}}", variables: {text: string}}
        - {version: 2, prompt: "Sentiment of {{text}}?", variables: {text: string}}
  mcp: {}
"""

# Runs in a fresh interpreter: load and check the config with the core (what `pygate
# check` does) and compile it for the core; then the `check` command itself. Prints the
# modules imported after each.
CHECK_THEN_LIST_MODULES = textwrap.dedent(
    """
    import json, sys
    from pygate.config import check_with_core, load_config

    loaded = load_config(sys.argv[1], check_core=True)
    check_with_core(loaded)
    assert '"pygate-ai"' in loaded.core_json()
    after_config = sorted(sys.modules)

    from pygate.cli.main import main

    status = main(["check", "--config", sys.argv[1]])
    print(json.dumps({"config": after_config, "cli": sorted(sys.modules), "status": status}))
    """
)


def _ai_runtime_or_shipper(modules: list[str]) -> list[str]:
    return [
        name
        for name in modules
        if name == "pygate.ai" or name.startswith("pygate.ai.") or name.endswith("shipper")
    ]


def test_checking_a_config_imports_no_ai_runtime_no_aiohttp_no_shipper(tmp_path):
    config = tmp_path / "gw.yaml"
    config.write_text(AI_CONFIG)
    result = subprocess.run(
        [sys.executable, "-c", CHECK_THEN_LIST_MODULES, str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["status"] == 0, result.stdout + result.stderr
    loaded_modules = report["config"]
    assert "pygate.config.ai_schema" in loaded_modules  # the `ai:` section was read
    assert "pygate.plugins.native.key_auth" in loaded_modules  # and the routes' plugins
    assert _ai_runtime_or_shipper(loaded_modules) == []
    assert [m for m in loaded_modules if m.split(".")[0] == "aiohttp"] == []
    # The command as a whole (its parser knows every command) loads no server code:
    # no AI runtime, no shipper, no aiohttp.
    assert _ai_runtime_or_shipper(report["cli"]) == []
    assert [m for m in report["cli"] if m.split(".")[0] == "aiohttp"] == []


def _module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_time_nodes(body: list[ast.stmt]):
    """Statements that run when the module is imported: the module's and its class
    bodies', through if/try/with, but not function bodies nor `if TYPE_CHECKING:`."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif isinstance(node, ast.ClassDef):
            yield from _import_time_nodes(node.body)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _import_time_nodes(node.body)
            yield from _import_time_nodes(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _import_time_nodes(block)
            for handler in node.handlers:
                yield from _import_time_nodes(handler.body)
        elif isinstance(node, (ast.With, ast.For, ast.While)):
            yield from _import_time_nodes(node.body)


def _imported_modules(module: str, is_package: bool, tree: ast.Module, known: set[str]):
    """The pygate modules `module` imports at import time."""
    for node in _import_time_nodes(tree.body):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
            continue
        base = node.module or ""
        if node.level:  # relative: from the package the module is in
            package = module.split(".") if is_package else module.split(".")[:-1]
            anchor = package[: len(package) - node.level + 1]
            base = ".".join([*anchor, base] if base else anchor)
        yield base
        for alias in node.names:
            if f"{base}.{alias.name}" in known:  # `from package import submodule`
                yield f"{base}.{alias.name}"


def _import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the modules of `package` it imports at import time."""
    sources = {_module_name(p, package.parent): p for p in package.rglob("*.py")}
    known = set(sources)
    graph: dict[str, set[str]] = {}
    for module, path in sources.items():
        tree = ast.parse(path.read_text(), str(path))
        own_packages = {".".join(module.split(".")[:i]) for i in range(1, module.count(".") + 2)}
        edges: set[str] = set()
        for target in _imported_modules(module, path.name == "__init__.py", tree, known):
            # Importing a.b.c runs a.b's __init__ first, unless it is being imported
            # already (it is a package this module is in).
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                name = ".".join(parts[:i])
                if name in known and name not in own_packages:
                    edges.add(name)
        graph[module] = edges
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root / "pkg"


def test_the_cycle_finder_finds_what_runs_at_import_time(tmp_path):
    # The shape this issue removed: config.schema -> ai.config -> config.units, where
    # importing config.units runs config/__init__, which reaches config.schema again.
    files = {
        "pkg/__init__.py": "",
        "pkg/config/__init__.py": "from pkg.config.schema import GatewayConfig\n",
        "pkg/config/schema.py": "import pkg.ai.config as ai_config\n",
        "pkg/config/units.py": "",
        "pkg/ai/__init__.py": "",
        "pkg/ai/config.py": "from pkg.config.units import Duration\n",
        "pkg/ai/lazy.py": """\
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from pkg.ai import runtime
            def later():
                from pkg.ai import runtime
            """,
        "pkg/ai/runtime.py": "from . import lazy\n",
    }
    package = _write_package(tmp_path, files)
    graph = _import_graph(package)
    assert graph["pkg.ai.runtime"] == {"pkg.ai.lazy"}
    assert graph["pkg.ai.lazy"] == set()
    assert _cycles(graph) == [["pkg.ai.config", "pkg.config", "pkg.config.schema"]]

    (package / "ai" / "config.py").write_text("import pkg.ai.runtime\n")  # no cycle now
    assert _cycles(_import_graph(package)) == []


def test_no_import_time_cycles_in_pygate():
    graph = _import_graph(PACKAGE)
    assert {"pygate.config.compile", "pygate.config.loader"} <= graph["pygate.config"]
    assert _cycles(graph) == []
