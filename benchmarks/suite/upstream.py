"""The upstream every proxy forwards to: nginx answering from memory, so it is never the
bottleneck. It shares the load core with the generator."""

from __future__ import annotations

import os
from pathlib import Path

from benchmarks.suite import procs
from benchmarks.suite.scenarios import SSE_BODY, UPSTREAM_JSON

NGINX_MAIN = """\
{user}
worker_processes 1;
daemon off;
master_process on;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 8192; }}
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
    client_body_buffer_size 64k;
    server {{
        listen 127.0.0.1:{port} reuseport backlog=4096;
        root {www};
        location /sse/ {{ default_type text/event-stream; try_files /events.txt =404; }}
        # `return` answers any method, so POSTs are read and discarded like GETs.
        location / {{ default_type application/json; return 200 '{json}'; }}
    }}
"""


def nginx_command(workdir: Path, http_body: str) -> list[str]:
    procs.world_readable_dir(workdir)
    # As root, nginx workers would switch to `nobody`; keep them as the current user.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = workdir / "nginx.conf"
    conf.write_text(NGINX_MAIN.format(user=user, dir=workdir, body=http_body))
    return ["nginx", "-p", str(workdir), "-c", str(conf), "-e", "stderr"]


def start_upstream(workdir: Path):
    """Returns (process, "127.0.0.1:port")."""
    www = procs.world_readable_dir(workdir / "www")
    (www / "events.txt").write_bytes(SSE_BODY)
    port = procs.free_port()
    body = UPSTREAM_SERVER.format(port=port, www=www, json=UPSTREAM_JSON.decode().strip())
    proc = procs.start(nginx_command(workdir, body), procs.LOAD_CORE, workdir / "stderr.log")
    addr = f"127.0.0.1:{port}"
    procs.wait_http(f"http://{addr}/", proc=proc)
    return proc, addr
