"""HAProxy under test (`nbthread 1`), configured for the same work: a key map, a stick-table
request-rate limit, a JSON log line per request."""

from __future__ import annotations

from pathlib import Path

from benchmarks.suite import procs
from benchmarks.suite.scenarios import (
    ACCURACY_RATE,
    API_KEY,
    KEYS,
    ROUTES,
    Scenario,
    consumer_keys,
)

NAME = "haproxy"

GLOBAL = """\
global
    nbthread 1
    maxconn 8000
    log stdout format raw local0
defaults
    mode http
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 75s
    option http-keep-alive
    http-reuse always
"""

LOG_FORMAT = (
    'log-format \'{"ts":%Ts,"request_id":"%ID","consumer":"%[var(txn.consumer)]",'
    '"method":"%HM","path":"%HPO","status":%ST,"latency_ms":%Ta,"bytes_in":%U,'
    '"bytes_out":%B,"client_ip":"%ci","upstream_addr":"%si:%sp"}\''
)


def _frontend(scenario: Scenario, port: int, keys_file: Path) -> str:
    lines = [f"frontend fe\n    bind 127.0.0.1:{port}", "    unique-id-format %{+X}o%ci%cp%rt"]
    key_check = [
        f"    http-request set-var(txn.consumer) req.hdr(apikey),map_str({keys_file})",
        "    http-request deny deny_status 401 unless { var(txn.consumer) -m found }",
        "    http-request del-header apikey",
    ]
    name = scenario.name
    if name == "auth":
        lines += [
            "    log global",
            f"    {LOG_FORMAT}",
            "    stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)",
            *key_check[:2],
            "    http-request track-sc0 var(txn.consumer)",
            "    http-request deny deny_status 429 if { sc_http_req_rate(0) gt 1000000000 }",
            key_check[2],
        ]
    elif name == "keys_100k":
        lines += key_check
    elif name == "rl_accuracy":
        lines += [
            "    stick-table type string len 64 size 100k expire 10s store http_req_rate(1s)",
            *key_check[:2],
            "    http-request track-sc0 var(txn.consumer)",
            "    http-request deny deny_status 429 "
            f"if {{ sc_http_req_rate(0) gt {ACCURACY_RATE} }}",
            key_check[2],
        ]
    lines += [
        "    http-request set-header X-Forwarded-Proto http",
        "    option forwardfor",
        "    http-request set-header X-Request-Id %[unique-id]",
    ]
    if name == "routes_1k":
        lines += [f"    use_backend app if {{ path_beg /svc{i}/items/ }}" for i in range(ROUTES)]
        # http-request rules run before use_backend, so "no route" lives in a backend.
        lines.append("    default_backend notfound")
    else:
        lines.append("    default_backend app")
    return "\n".join(lines)


def start(scenario: Scenario, upstream: str, workdir: Path):
    """Returns (process, base URL, None)."""
    procs.world_readable_dir(workdir)
    keys_file = workdir / "keys.map"
    pairs = consumer_keys(KEYS) if scenario.name == "keys_100k" else [("bench", API_KEY)]
    keys_file.write_text("".join(f"{key} {name}\n" for name, key in pairs))
    port = procs.free_port()
    conf = workdir / "haproxy.cfg"
    conf.write_text(
        GLOBAL
        + _frontend(scenario, port, keys_file)
        + f"\nbackend app\n    server s1 {upstream} maxconn 2000\n"
        + "backend notfound\n    http-request deny deny_status 404\n"
    )
    cmd = ["haproxy", "-f", str(conf)]
    proc = procs.start(cmd, procs.PROXY_CORE, workdir / "haproxy.log")
    procs.wait_http(f"http://127.0.0.1:{port}/", proc=proc)
    return proc, f"http://127.0.0.1:{port}", None
