#!/usr/bin/env python3
"""pygate vs nginx as a reverse proxy, in one run on one (2-core) machine.

Layout (taskset pins every process):
  core 1: the upstream (nginx-light serving a small static file) and the load generator (wrk)
  core 0: the proxy under test: pygate (workers: 1; its log shipper and admin loop too),
          or nginx (worker_processes 1) configured the same way

Scenarios:
  plain: proxy only. nginx: access_log off. (pygate always records every call; the
         records are shipped to the embedded chDB store in both scenarios.)
  auth:  key-auth + rate-limit (limit high enough that nothing is refused) + call log.
         nginx: a map of keys (401 when absent), limit_req, JSON access log to a
         buffered file.

Each (scenario, proxy) pair is measured RUNS times, alternating proxies to spread drift;
the medians of req/s, p50 and p99 and the pygate/nginx ratio are written as a markdown
section into benchmarks/RESULTS.md (replacing this script's previous section), with the
exact command line.

    python benchmarks/proxy_vs_nginx.py [--runs 3] [--duration 10] [--connections 50]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
API_KEY = "bench-key-1"
PROXY_CORE = "0"
LOAD_CORE = "1"
SECTION_TITLE = "pygate vs nginx"
STATIC_BODY = b'{"ok":true,"service":"upstream","note":"small static response"}\n'


# ----- helpers -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, timeout: float = 120, headers: dict[str, str] | None = None) -> int:
    """Wait until `url` answers any HTTP status; return it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status
        except urllib.error.HTTPError as err:
            return err.code
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} did not answer within {timeout}s") from None
            time.sleep(0.1)


def stop(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 60) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


# ----- nginx -------------------------------------------------------------------------

NGINX_MAIN = """\
{user}
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
{body}
}}
"""

UPSTREAM_SERVER = """\
    access_log off;
    open_file_cache max=16;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {dir}/www;
        location / {{ default_type application/json; try_files /index.json =404; }}
    }}
"""

PEER_SERVER = """\
    upstream app {{ server {upstream}; keepalive 256; }}
    log_format calls escape=json '{{"ts":"$msec","request_id":"$request_id",'
        '"consumer":"$consumer","method":"$request_method","host":"$host","path":"$uri",'
        '"status":$status,"latency_ms":$request_time,"upstream_latency_ms":"$upstream_response_time",'
        '"bytes_in":$request_length,"bytes_out":$bytes_sent,"client_ip":"$remote_addr",'
        '"upstream_addr":"$upstream_addr"}}';
    map $http_apikey $consumer {{ default ""; "{key}" "bench"; }}
    limit_req_zone $consumer zone=perkey:10m rate=1000000r/s;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        location /plain/ {{
            access_log off;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;
            proxy_pass http://app;
        }}
        location /auth/ {{
            if ($consumer = "") {{ return 401; }}
            limit_req zone=perkey burst=1000000 nodelay;
            access_log {dir}/access.json calls buffer=256k flush=1s;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header apikey "";
            proxy_set_header X-Consumer-Username $consumer;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Request-Id $request_id;
            proxy_pass http://app;
        }}
    }}
"""


def start_nginx(workdir: Path, body: str, core: str) -> subprocess.Popen:
    workdir.mkdir(parents=True, exist_ok=True)
    os.chmod(workdir, 0o755)
    # As root, nginx workers would switch to `nobody`; keep them as the current user.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(user=user, dir=workdir, body=body))
    log = open(workdir / "stderr.log", "ab")  # noqa: SIM115 - lives as long as nginx
    return subprocess.Popen(
        ["taskset", "-c", core, "nginx", "-p", str(workdir), "-c", str(conf), "-e", "stderr"],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )


# ----- pygate ------------------------------------------------------------------------

PYGATE_CONFIG = """\
listen: 127.0.0.1:{port}
workers: 1
admin:
  listen: 127.0.0.1:{admin_port}
log:
  store: chdb://./data
  flush_interval: 1s
upstreams:
  - name: app
    targets: ["{upstream}"]
    keepalive: 256
consumers:
  - name: bench
    keys: ["{key}"]
routes:
  - name: plain
    paths: ["/plain/*"]
    upstream: app
  - name: auth
    paths: ["/auth/*"]
    upstream: app
    plugins:
      key-auth: {{hide_credentials: true}}
      rate-limit: {{rate: 1000000, per: 1s, burst: 1000000, by: consumer}}
"""


def start_pygate(workdir: Path, upstream: str, core: str) -> tuple[subprocess.Popen, int, int]:
    workdir.mkdir(parents=True, exist_ok=True)
    port, admin_port = free_port(), free_port()
    conf = workdir / "gateway.yaml"
    conf.write_text(
        PYGATE_CONFIG.format(port=port, admin_port=admin_port, upstream=upstream, key=API_KEY)
    )
    log = open(workdir / "gateway.log", "ab")  # noqa: SIM115 - lives as long as pygate
    proc = subprocess.Popen(
        ["taskset", "-c", core, sys.executable, "-m", "pygate", "serve", "--config", str(conf)],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
        start_new_session=True,
    )
    return proc, port, admin_port


# ----- wrk ---------------------------------------------------------------------------


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: int


UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(out: str) -> Run:
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    pct = {
        m.group(1): float(m.group(2)) * UNIT_MS[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return Run(
        rps=rps,
        p50_ms=pct["50"],
        p99_ms=pct["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
    )


def wrk(url: str, duration: int, connections: int, headers: dict[str, str]) -> Run:
    cmd = ["taskset", "-c", LOAD_CORE, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    cmd += ["--latency", "--timeout", "10s"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(
        [*cmd, url], capture_output=True, text=True, check=True, timeout=duration + 120
    ).stdout
    return parse_wrk(out)


# ----- main --------------------------------------------------------------------------

SCENARIOS = {
    "plain": ("/plain/item", {}),
    "auth": ("/auth/item", {"apikey": API_KEY}),
}


def fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def main() -> int:
    parser = argparse.ArgumentParser(description="pygate vs nginx reverse-proxy benchmark")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of warm-up per proxy")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()

    for tool in ("nginx", "wrk", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} not found (apt-get install nginx-light wrk util-linux)")
    if (os.cpu_count() or 1) < 2:
        sys.exit("needs 2 cores: one for the proxy, one for upstream + wrk")

    command = "python " + " ".join(
        shlex.quote(a) for a in ["benchmarks/proxy_vs_nginx.py"] + sys.argv[1:]
    )
    procs: list[subprocess.Popen] = []
    nginxes: list[subprocess.Popen] = []
    tmp = Path(tempfile.mkdtemp(prefix="pygate-bench-"))
    os.chmod(tmp, 0o755)
    try:
        up_port, peer_port = free_port(), free_port()
        www = tmp / "upstream" / "www"
        www.mkdir(parents=True)
        (www / "index.json").write_bytes(STATIC_BODY)
        os.chmod(www, 0o755)
        upstream = f"127.0.0.1:{up_port}"
        up_conf = UPSTREAM_SERVER.format(port=up_port, dir=tmp / "upstream")
        peer_conf = PEER_SERVER.format(
            port=peer_port, upstream=upstream, key=API_KEY, dir=tmp / "peer"
        )
        nginxes.append(start_nginx(tmp / "upstream", up_conf, LOAD_CORE))
        nginxes.append(start_nginx(tmp / "peer", peer_conf, PROXY_CORE))
        procs += nginxes
        gw, gw_port, admin_port = start_pygate(tmp / "pygate", upstream, PROXY_CORE)
        procs.append(gw)

        bases = {"pygate": f"http://127.0.0.1:{gw_port}", "nginx": f"http://127.0.0.1:{peer_port}"}
        assert wait_http(f"http://{upstream}/") == 200
        wait_http(f"http://127.0.0.1:{admin_port}/status")
        # Same behaviour from both proxies before measuring anything.
        for name, base in bases.items():
            assert wait_http(base + "/plain/x") == 200, name
            assert wait_http(base + "/auth/x") == 401, name
            assert wait_http(base + "/auth/x", headers={"apikey": API_KEY}) == 200, name

        for base in bases.values():
            for path, headers in SCENARIOS.values():
                wrk(base + path, args.warmup, args.connections, headers)

        results: dict[tuple[str, str], list[Run]] = {}
        for scenario, (path, headers) in SCENARIOS.items():
            for i in range(args.runs):
                order = ["pygate", "nginx"] if i % 2 == 0 else ["nginx", "pygate"]
                for name in order:
                    run = wrk(bases[name] + path, args.duration, args.connections, headers)
                    results.setdefault((scenario, name), []).append(run)
                    print(
                        f"{scenario:5} {name:6} run {i + 1}: {fmt(run.rps, 0)} req/s "
                        f"p50 {run.p50_ms:.3f} ms p99 {run.p99_ms:.3f} ms "
                        f"non-2xx {run.non_2xx} errors {run.errors}",
                        flush=True,
                    )
        status = urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status", timeout=10)
        gw_status = status.read().decode()
    finally:
        for proc in reversed(procs):
            # SIGQUIT is nginx's graceful stop; pygate drains on SIGTERM.
            stop(proc, signal.SIGQUIT if proc in nginxes else signal.SIGTERM)
        shutil.rmtree(tmp, ignore_errors=True)

    section = render(args, command, results, gw_status)
    print(section)
    if not args.no_write:
        write_section(section)
        print(f"wrote the section into {RESULTS}")
    return 0


STATUS_KEYS = (
    "requests_total",
    "responses_2xx",
    "records_dropped",
    "log_rows_written",
    "log_batches_written",
    "log_batches_failed",
)


def status_summary(status_json: str) -> str:
    """The counters that show every call was recorded (nothing dropped by the core)."""
    try:
        status = json.loads(status_json)
    except ValueError:
        return "unavailable"
    return ", ".join(f"`{k}` {status[k]:,}" for k in STATUS_KEYS if k in status)


def write_section(section: str) -> None:
    """Replace this script's section of RESULTS.md (other sections are left alone)."""
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = text.split("\n## ")
    kept = [parts[0].rstrip("\n")]
    kept += ["## " + p.rstrip("\n") for p in parts[1:] if not p.startswith(SECTION_TITLE)]
    RESULTS.write_text("\n\n".join([*kept, section.rstrip("\n")]) + "\n")


def render(args, command: str, results: dict[tuple[str, str], list[Run]], gw_status: str) -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    nginx_v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
    wrk_v = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()
    lines = [
        f"## {SECTION_TITLE}: {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"Machine: {os.cpu_count()} cores ({cpu}), {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, {nginx_v}, {wrk_v[0] if wrk_v else 'wrk'}.",
        f"Proxies on core {PROXY_CORE} (pygate `workers: 1`, nginx `worker_processes 1`); "
        f"upstream nginx (small static file, {len(STATIC_BODY)} bytes) and wrk "
        f"(`-t1 -c{args.connections} -d{args.duration}s`) on core {LOAD_CORE}. "
        f"{args.runs} runs per row, medians shown; proxies alternated between runs.",
        "",
        "| scenario | proxy | req/s | req/s min-max | p50 ms | p99 ms | req/s pygate/nginx "
        "| non-2xx | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in SCENARIOS:
        med = {}
        for name in ("pygate", "nginx"):
            runs = results[(scenario, name)]
            med[name] = (
                statistics.median(r.rps for r in runs),
                statistics.median(r.p50_ms for r in runs),
                statistics.median(r.p99_ms for r in runs),
                sum(r.non_2xx for r in runs),
                sum(r.errors for r in runs),
            )
        ratio = med["pygate"][0] / med["nginx"][0] if med["nginx"][0] else float("nan")
        for name in ("pygate", "nginx"):
            rps, p50, p99, non2xx, errors = med[name]
            all_rps = [r.rps for r in results[(scenario, name)]]
            spread = f"{fmt(min(all_rps), 0)}-{fmt(max(all_rps), 0)}"
            shown_ratio = f"{ratio:.2f}" if name == "pygate" else ""
            lines.append(
                f"| {scenario} | {name} | {fmt(rps, 0)} | {spread} | {p50:.3f} | {p99:.3f} | "
                f"{shown_ratio} | {non2xx} | {errors} |"
            )
    lines += [
        "",
        "Scenarios: `plain` = proxy only (nginx `access_log off`; pygate records every call "
        "to its chDB store regardless). `auth` = key-auth + rate-limit (limit far above the "
        "offered load, nothing refused) + call log (nginx: `map` of keys with 401 when absent, "
        "`limit_req`, JSON `access_log` with `buffer=256k flush=1s`).",
        "",
        f"pygate `/status` after the runs: {status_summary(gw_status)}.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
