"""nginx under test (nginx-light, `worker_processes 1`), configured as an nginx user would
for the same work: `map` for keys, `limit_req`, a buffered JSON access log."""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite import procs
from benchmarks.suite.scenarios import (
    ACCURACY_BURST,
    ACCURACY_RATE,
    API_KEY,
    KEYS,
    ROUTES,
    Scenario,
    consumer_keys,
)
from benchmarks.suite.upstream import nginx_command

NAME = "nginx"

PROXY = """\
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;
            proxy_pass http://app;"""

LOG_FORMAT = """\
    log_format calls escape=json '{"ts":"$msec","request_id":"$request_id",'
        '"consumer":"$consumer","method":"$request_method","host":"$host","path":"$uri",'
        '"status":$status,"latency_ms":$request_time,"upstream_latency_ms":"$upstream_response_time",'
        '"bytes_in":$request_length,"bytes_out":$bytes_sent,"client_ip":"$remote_addr",'
        '"upstream_addr":"$upstream_addr"}';"""


def _keys_map(scenario: Scenario) -> str:
    pairs = consumer_keys(KEYS) if scenario.name == "keys_100k" else [("bench", API_KEY)]
    entries = "\n".join(f'        "{key}" "{name}";' for name, key in pairs)
    return f'    map $http_apikey $consumer {{\n        default "";\n{entries}\n    }}'


def _locations(scenario: Scenario, workdir: Path) -> str:
    auth = '            if ($consumer = "") { return 401; }\n'
    key_hidden = '            proxy_set_header apikey "";\n'
    name = scenario.name
    if name in ("plain", "post_16k"):
        return f"        location /plain/ {{\n            access_log off;\n{PROXY}\n        }}"
    if name == "sse":
        return (
            "        location /sse/ {\n            access_log off;\n"
            f"            proxy_buffering off;\n{PROXY}\n        }}"
        )
    if name == "auth":
        return (
            f"        location /auth/ {{\n{auth}"
            "            limit_req zone=perkey burst=1000000 nodelay;\n"
            f"            access_log {workdir}/access.json calls buffer=256k flush=1s;\n"
            f"{key_hidden}{PROXY}\n        }}"
        )
    if name == "routes_1k":
        return "\n".join(
            f"        location /svc{i}/items/ {{\n            access_log off;\n{PROXY}\n        }}"
            for i in range(ROUTES)
        )
    if name == "keys_100k":
        return (
            f"        location /keys/ {{\n            access_log off;\n"
            f"{auth}{key_hidden}{PROXY}\n        }}"
        )
    if name == "rl_accuracy":
        return (
            f"        location /limited/ {{\n            access_log off;\n{auth}"
            f"            limit_req zone=accuracy burst={ACCURACY_BURST} nodelay;\n"
            f"            limit_req_status 429;\n{key_hidden}{PROXY}\n        }}"
        )
    raise ValueError(f"no nginx configuration for scenario {name!r}")


def http_block(scenario: Scenario, upstream: str, port: int, workdir: Path) -> str:
    return f"""\
    upstream app {{ server {upstream}; keepalive 256; }}
    map_hash_max_size 262144;
    map_hash_bucket_size 128;
    client_body_buffer_size 64k;
{LOG_FORMAT}
{_keys_map(scenario)}
    limit_req_zone $consumer zone=perkey:10m rate=1000000r/s;
    limit_req_zone $consumer zone=accuracy:10m rate={ACCURACY_RATE}r/s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
{_locations(scenario, workdir)}
    }}
"""


def start(scenario: Scenario, upstream: str, workdir: Path):
    """Returns (process, base URL, None)."""
    port = procs.free_port()
    cmd = nginx_command(workdir, http_block(scenario, upstream, port, workdir))
    proc = procs.start(cmd, procs.PROXY_CORE, workdir / "stderr.log")
    procs.wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc, f"http://127.0.0.1:{port}", None
