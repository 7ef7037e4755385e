#!/usr/bin/env bash
# The ONE command that installs what the tests need and runs every test:
#   bash tests/run-all.sh
# Works on a fresh Debian machine with Python 3.11+ and Rust (cargo) installed, as root or
# with sudo, from a clean clone, without stdin (CI=true). Exits non-zero on any failure.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1

step() { printf '\n==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo -n"; fi

# ---- system packages: only the missing ones; apt-get update only if something is missing
step "system packages"
missing=()
need() { # need COMMAND PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need nginx nginx-light
need wrk wrk
need redis-server redis-server
need chromium chromium
need curl curl
need nghttp nghttp2-client   # nghttp and h2load: HTTP/2 clients (tests/test_http2*.py)
need taskset util-linux
# Postgres for tests/test_pg_state.py (initdb is not on PATH: Debian keeps it versioned)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || missing+=("postgresql")
PY="${PYTHON:-python3}"
if [ -z "${VIRTUAL_ENV:-}" ] && "$PY" - <<'PYEOF'
import os, sys, sysconfig
sys.exit(0 if os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")) else 1)
PYEOF
then
    # Debian's own Python refuses `pip install` (PEP 668): use a venv (needs python3-venv).
    USE_VENV=1
    "$PY" -c "import ensurepip" >/dev/null 2>&1 || missing+=("python3-venv")
else
    USE_VENV=0
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing: ${missing[*]}"
    $SUDO apt-get update
    if ! $SUDO apt-get install -y --no-install-recommends "${missing[@]}"; then
        # Newer Debian releases fold nginx-light into nginx.
        $SUDO apt-get install -y --no-install-recommends "${missing[@]/nginx-light/nginx}"
    fi
else
    echo "all present"
fi

if [ "$USE_VENV" = 1 ]; then
    step "virtualenv .venv (system Python is externally managed)"
    [ -x .venv/bin/python ] || "$PY" -m venv --system-site-packages .venv
    PY="$ROOT/.venv/bin/python"
fi
export PATH="$(dirname "$(command -v "$PY")"):$PATH"

command -v cargo >/dev/null 2>&1 || { echo "cargo not found: install Rust (rustup)" >&2; exit 1; }

# ---- the package with its test extras (builds the Rust extension through maturin)
step "pip install -e .[test]"
"$PY" -m pip install -e ".[test]"
"$PY" -c "import pygate._core as c; print('pygate core', c.version())"

# ---- Rust unit tests (the python feature is off by default: no libpython needed)
step "cargo test --workspace"
cargo test --workspace

# ---- lint
step "ruff check"
"$PY" -m ruff check .

# ---- the micro benchmarks once, untimed: each asserts its answer, so a broken hot
# function fails here (timing comparisons are for benchmarks/micro, not CI)
step "micro benchmarks (correctness only)"
"$PY" -m pytest benchmarks/micro -p no:cacheprovider -q --benchmark-disable

# ---- integration tests (real gateway, real upstreams, real clients on 127.0.0.1)
step "pytest"
"$PY" -m pytest tests -p no:cacheprovider -ra --durations=15 "$@"
