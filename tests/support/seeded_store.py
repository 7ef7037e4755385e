"""A chDB store holding rows a test wrote, and a config whose gateway nobody runs, so
`pygate logs report/query` open the store themselves (reports over known rows)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from .configs import route, upstream
from .net import free_port

# chDB lets one process use a data directory: write it from a child process, so the
# test process never holds it and the CLI can open it.
_POPULATE = """
import sys
from chdb import session
from pygate.logstore import open_store
path, data_file = sys.argv[1], sys.argv[2]
with open_store("chdb://" + path) as store:
    store.migrate()
writer = session.Session(path)
writer.query("INSERT INTO pygate.requests FORMAT JSONEachRow " + open(data_file).read())
writer.cleanup()
"""


def seeded_store(root: Path, rows: list[dict]) -> Path:
    """Migrate a store in `root`/data, insert `rows` into pygate.requests; return the
    config file that names it."""
    data_file = root / "rows.jsonl"
    data_file.write_text("\n".join(json.dumps(r) for r in rows))
    subprocess.run(
        [sys.executable, "-c", _POPULATE, str(root / "data"), str(data_file)],
        check=True,
        timeout=120,
    )
    config = root / "gateway.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "listen": f"127.0.0.1:{free_port()}",
                "admin": {"listen": f"127.0.0.1:{free_port()}"},
                "log": {"store": "chdb://./data"},
                "upstreams": [upstream("u", ["127.0.0.1:9"])],
                "routes": [route("r", ["/r"], "u")],
            }
        )
    )
    return config
