"""pygate from another install, side by side with this one: an A/B between two builds.

python -m venv --system-site-packages /tmp/base && /tmp/base/bin/pip install --no-deps <old>
python -m benchmarks.suite --peers pygate,pygate-base --baseline-python /tmp/base/bin/python
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite.peers import pygate
from benchmarks.suite.scenarios import Scenario

NAME = "pygate-base"
PYTHON: str | None = None  # from --baseline-python


def start(scenario: Scenario, upstream: str, workdir: Path):
    if PYTHON is None:
        raise SystemExit("--peers pygate-base needs --baseline-python PATH")
    return pygate.start(scenario, upstream, workdir, python=PYTHON)
