"""pygate under test: `workers: 1`, its log shipper and admin loop on the same core."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import yaml

from benchmarks.suite import jwt_keys, procs
from benchmarks.suite.scenarios import (
    ACCURACY_BURST,
    ACCURACY_RATE,
    API_KEY,
    KEYS,
    ROUTES,
    Scenario,
    consumer_keys,
)

NAME = "pygate"
REPO = Path(__file__).resolve().parents[3]


def config(scenario: Scenario, upstream: str, port: int, admin_port: int) -> dict:
    cfg: dict = {
        "listen": f"127.0.0.1:{port}",
        "workers": 1,
        # Loopback only, read by this harness: no token (admin.auth: none).
        "admin": {"listen": f"127.0.0.1:{admin_port}", "auth": "none"},
        "log": {"store": "chdb://./data", "flush_interval": "1s"},
        "limits": {"max_body_bytes": "1m"},
        "upstreams": [{"name": "app", "targets": [upstream], "keepalive": 256}],
        "consumers": [{"name": "bench", "keys": [API_KEY]}],
    }
    app = {"upstream": "app"}
    auth = {"key-auth": {"hide_credentials": True}}
    routes = {
        "plain": [{"name": "plain", "paths": ["/plain/*"], **app}],
        "post_16k": [{"name": "plain", "paths": ["/plain/*"], **app}],
        "sse": [{"name": "sse", "paths": ["/sse/*"], **app}],
        "auth": [
            {
                "name": "auth",
                "paths": ["/auth/*"],
                **app,
                "plugins": {
                    **auth,
                    "rate-limit": {"rate": 10**9, "per": "1s", "by": "consumer"},
                },
            }
        ],
        "routes_1k": [
            {"name": f"svc{i}", "paths": [f"/svc{i}/items/{{id}}"], **app} for i in range(ROUTES)
        ],
        "keys_100k": [{"name": "keys", "paths": ["/keys/*"], **app, "plugins": auth}],
        "py_access": [
            {
                "name": "py",
                "paths": ["/py/*"],
                **app,
                "plugins": {"benchmarks.suite.plugin_stamp:Stamp": {}},
            }
        ],
        "jwt_rs256": [
            {
                "name": "jwt",
                "paths": ["/jwt/*"],
                **app,
                "plugins": {"jwt": {"jwks": [jwt_keys.public_jwk()]}},
            }
        ],
        "rl_accuracy": [
            {
                "name": "limited",
                "paths": ["/limited/*"],
                **app,
                "plugins": {
                    **auth,
                    "rate-limit": {
                        "rate": ACCURACY_RATE,
                        "per": "1s",
                        "burst": ACCURACY_BURST,
                        "by": "consumer",
                    },
                },
            }
        ],
    }
    cfg["routes"] = routes[scenario.name]
    if scenario.name == "keys_100k":
        cfg["consumers"] = [{"name": n, "keys": [k]} for n, k in consumer_keys(KEYS)]
    return cfg


def start(
    scenario: Scenario,
    upstream: str,
    workdir: Path,
    python: str = sys.executable,
    admin_auth_field: bool = True,
):
    """Returns (process, base URL, status URL). `python`: the interpreter (and so the pygate
    install) to run; pygate_base.py passes another one for an A/B between builds, and
    `admin_auth_field=False` for builds older than `admin.auth` (their admin was open)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, admin_port = procs.free_port(), procs.free_port()
    conf = workdir / "gateway.yaml"
    cfg = config(scenario, upstream, port, admin_port)
    if not admin_auth_field:
        del cfg["admin"]["auth"]
    conf.write_text(yaml.safe_dump(cfg))
    cmd = [python, "-m", "pygate", "serve", "--config", str(conf)]
    env = None
    if scenario.name == "py_access":
        # The plugin is imported from this repository's benchmarks package.
        path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
        env = {**os.environ, "PYTHONPATH": path}
    proc = procs.start(cmd, procs.PROXY_CORE, workdir / "gateway.log", cwd=workdir, env=env)
    procs.wait_http(f"http://127.0.0.1:{admin_port}/status", timeout=180, proc=proc)
    return proc, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{admin_port}/status"
