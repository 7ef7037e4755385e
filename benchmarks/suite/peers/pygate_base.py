"""pygate from another install, side by side with this one: an A/B between two builds.

python -m venv --system-site-packages /tmp/base && /tmp/base/bin/pip install --no-deps <old>
python -m benchmarks.suite --peers pygate,pygate-base --baseline-python /tmp/base/bin/python
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

from benchmarks.suite.peers import pygate
from benchmarks.suite.scenarios import Scenario

NAME = "pygate-base"
PYTHON: str | None = None  # from --baseline-python


def start(scenario: Scenario, upstream: str, workdir: Path):
    if PYTHON is None:
        raise SystemExit("--peers pygate-base needs --baseline-python PATH")
    return pygate.start(
        scenario, upstream, workdir, python=PYTHON, admin_auth_field=_knows_admin_auth(PYTHON)
    )


@cache
def _knows_admin_auth(python: str) -> bool:
    """Whether that install's config has `admin.auth` (older builds refuse the field)."""
    probe = "import pygate.config.schema as s; print('auth' in s.Admin.__struct_fields__)"
    # Run outside the repository, so the other install's pygate is the one imported.
    done = subprocess.run(
        [python, "-c", probe], capture_output=True, text=True, cwd="/", check=True
    )
    return done.stdout.strip() == "True"
