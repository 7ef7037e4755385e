"""What following the README leaves behind, and what benchmark scripts say when they fail.

- The quick start (`pygate serve --config examples/gateway.yaml`, a request, `status`)
  must leave `git status` clean: its state lands in ignored paths only.
- Benchmark scripts that run `python -m pygate ...` and read its JSON must show the
  command's own error (the extension is missing, say), not a JSON decode error.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.client import get
from support.gateway import READY_LINE, cli_env, spawn
from support.net import free_port, wait_until

REPO = Path(__file__).resolve().parent.parent


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True, timeout=60
    ).stdout


def test_quick_start_leaves_no_untracked_files(tmp_path):
    # A checkout of the files the quick start touches: the repository's .gitignore and
    # examples/ as committed. Only the listen ports differ (others may hold 8080/9180).
    clone = tmp_path / "clone"
    (clone / "examples").mkdir(parents=True)
    shutil.copy(REPO / ".gitignore", clone / ".gitignore")
    for example in (REPO / "examples").iterdir():
        shutil.copy(example, clone / "examples" / example.name)
    port, admin_port = free_port(), free_port()
    config = clone / "examples" / "gateway.yaml"
    text = config.read_text()
    assert "127.0.0.1:8080" in text and "127.0.0.1:9180" in text
    text = text.replace("127.0.0.1:8080", f"127.0.0.1:{port}")
    config.write_text(text.replace("127.0.0.1:9180", f"127.0.0.1:{admin_port}"))
    _git(clone, "init", "-q")
    _git(clone, "add", ".")
    assert _git(clone, "status", "--porcelain") != ""

    log = tmp_path / "serve.log"
    # Run from the clone's root, as the README does (`--config examples/gateway.yaml`).
    serve_cmd = [sys.executable, "-m", "pygate", "serve", "--config", "examples/gateway.yaml"]
    proc = spawn(serve_cmd, log, cwd=clone)
    try:
        wait_until(lambda: READY_LINE in log.read_text() or proc.poll() is not None, 120)
        assert proc.poll() is None, log.read_text()
        get(f"http://127.0.0.1:{port}/demo/hello")  # 502: no demo upstream; logged anyway
        status = subprocess.run(
            [sys.executable, "-m", "pygate", "status", "--config", "examples/gateway.yaml"],
            cwd=clone,
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(),
        )
        assert status.returncode == 0, status.stderr
    finally:
        proc.terminate()
        proc.wait(60)
    _git(clone, "commit", "-q", "-m", "examples", "--author", "t <t@t>", "--no-gpg-sign")
    untracked = _git(clone, "status", "--porcelain", "--untracked-files=all")
    assert untracked == "", f"quick start left untracked files:\n{untracked}"
    # ... and it did write its state (inside an ignored directory).
    ignored = _git(clone, "status", "--porcelain", "--ignored", "--untracked-files=all")
    assert "admin" in ignored and "data" in ignored, ignored


@pytest.fixture(scope="module")
def no_extension(tmp_path_factory) -> Path:
    """A directory whose `pygate` package lacks the built extension (pygate._core)."""
    root = tmp_path_factory.mktemp("no-core")
    shutil.copytree(REPO / "pygate", root / "pygate", ignore=shutil.ignore_patterns("*.so"))
    return root


# Each benchmark entry point that parses `python -m pygate ...` JSON, called the way the
# scripts call it; the pygate they start is the one without the extension.
_CALLS = {
    "loadgen.pygate_bench": (
        "from benchmarks.suite.loadgen import pygate_bench\n"
        "from benchmarks.suite.scenarios import Scenario\n"
        "pygate_bench('http://127.0.0.1:9/x', Scenario('plain', '/x'), 1, 1, 0)\n"
    ),
    "ai_vs_litellm.bench": (
        "from pathlib import Path\n"
        "from benchmarks.ai_vs_litellm import bench\n"
        "Path('body.json').write_text('{}')\n"
        "bench('http://127.0.0.1:9/v1/chat/completions', Path('body.json'), 1)\n"
    ),
    "log_ingest.pygate_bench": (
        "from benchmarks.log_ingest import pygate_bench\n"
        "pygate_bench('http://127.0.0.1:9/x', 1, 1)\n"
    ),
    "log_ingest.stored_rows": (
        "from pathlib import Path\n"
        "from benchmarks.log_ingest import stored_rows\n"
        "Path('gw.yaml').write_text('listen: [not, an, address]\\n')\n"
        "stored_rows(Path('gw.yaml'))\n"
    ),
}


@pytest.mark.parametrize("call", sorted(_CALLS))
def test_benchmark_scripts_show_the_pygate_error(no_extension, call):
    done = subprocess.run(
        [sys.executable, "-c", _CALLS[call]],
        cwd=no_extension,  # first on sys.path: this `pygate` is imported, here and below
        capture_output=True,
        text=True,
        timeout=120,
        env={**cli_env(), "PYTHONPATH": f"{no_extension}:{REPO}"},
    )
    assert done.returncode != 0
    assert "JSONDecodeError" not in done.stderr, done.stderr
    assert "Expecting value" not in done.stderr, done.stderr
    if call == "log_ingest.stored_rows":
        # `logs query` needs no extension: its own error is the config's.
        assert "config error:" in done.stderr and "gw.yaml" in done.stderr, done.stderr
    else:
        assert "pygate._core" in done.stderr, done.stderr
