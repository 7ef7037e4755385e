#!/usr/bin/env python3
"""pygate vs nginx terminating TLS (issue 12, performance): the same ECDSA P-256
certificate on both, the same upstream nginx behind them, the suite's pinning (each proxy
alone on core 0 with one worker; upstream nginx and the generator on core 1), runs
alternating between the two, medians reported.

https_keepalive  wrk -t1 -c50 over TLS, keep-alive: req/s and p99
full_handshakes  `openssl s_time -new` x8: one full handshake (no resumption) per GET
resumed_handshakes  h2load --h1 -c50 with `Connection: close`: a new connection per request,
                 resumed with the server's TLS 1.3 session ticket
h2_tls           h2load -c4 -m50 over TLS, ALPN h2: req/s

    python benchmarks/tls_h2_vs_nginx.py [--runs 3] [--duration 10] [--no-write]
        [--scenarios https_keepalive,h2_tls] [--python OTHER_VENV/bin/python]
"""

from __future__ import annotations

import argparse
import datetime
import ipaddress
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import yaml  # noqa: E402
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

from benchmarks.suite import cputime, loadgen, procs, report  # noqa: E402
from benchmarks.suite.peers import nginx as nginx_peer  # noqa: E402
from benchmarks.suite.peers import pygate as pygate_peer  # noqa: E402
from benchmarks.suite.scenarios import SCENARIOS  # noqa: E402
from benchmarks.suite.upstream import nginx_command, start_upstream  # noqa: E402

SECTION = "tls-h2-vs-nginx"
PLAIN = SCENARIOS["plain"]  # proxy only: GET /plain/item, no access log on either side
CONNECTIONS = 50
H2_CONNECTIONS, H2_STREAMS = 4, 50
# `openssl s_time` clients run side by side for the full-handshake row: each is sequential.
S_TIME_CLIENTS = 8


def make_cert(directory: Path) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 certificate for 127.0.0.1 and localhost."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.SubjectAlternativeName(alt), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "bench.pem", directory / "bench.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def start_pygate(upstream: str, workdir: Path, cert: Path, key: Path, python: str):
    """The suite's `plain` pygate config plus a TLS listener; HTTP/2 over TLS is offered in
    ALPN (`http2.over_tls`, on by default, written out here)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, tls_port, admin_port = procs.free_port(), procs.free_port(), procs.free_port()
    cfg = pygate_peer.config(PLAIN, upstream, port, admin_port)
    cfg["listeners"] = [
        {
            "listen": f"127.0.0.1:{tls_port}",
            "tls": {"certificates": [{"cert": str(cert), "key": str(key)}]},
        }
    ]
    cfg["http2"] = {"over_tls": True}
    conf = workdir / "gateway.yaml"
    conf.write_text(yaml.safe_dump(cfg))
    cmd = [python, "-m", "pygate", "serve", "--config", str(conf)]
    proc = procs.start(cmd, procs.PROXY_CORE, workdir / "gateway.log", cwd=workdir)
    procs.wait_http(f"http://127.0.0.1:{admin_port}/status", timeout=180, proc=proc)
    return proc, tls_port


def start_nginx(upstream: str, workdir: Path, cert: Path, key: Path):
    """The suite's `plain` nginx server block, listening with `ssl http2` (nginx 1.22's
    spelling) instead. Session cache and tickets stay at nginx's defaults; the generators
    never offer a session back, so every connection is a full handshake on both peers."""
    port = procs.free_port()
    plain = nginx_peer.http_block(PLAIN, upstream, port, workdir)
    listen = f"listen 127.0.0.1:{port} reuseport backlog=4096;"
    if listen not in plain:
        raise RuntimeError("the suite's nginx server block changed: update start_nginx")
    block = plain.replace(
        listen,
        f"listen 127.0.0.1:{port} ssl http2 reuseport backlog=4096;\n"
        f"        ssl_certificate {cert};\n        ssl_certificate_key {key};\n"
        "        ssl_protocols TLSv1.2 TLSv1.3;",
    )
    proc = procs.start(nginx_command(workdir, block), procs.PROXY_CORE, workdir / "stderr.log")
    return proc, port


def check(url: str, peer: str) -> None:
    """Both peers must answer 200 over TLS, and speak h2 when ALPN offers it."""
    for flag, want in (("--http1.1", "1.1"), ("--http2", "2")):
        out = subprocess.run(
            ["curl", "-sk", flag, "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url],
            capture_output=True, text=True, timeout=60,
        ).stdout  # fmt: skip
        if out != f"200 {want}":
            raise RuntimeError(f"{peer}: curl {flag} {url} gave {out!r}, expected '200 {want}'")


def wait_tls(url: str, proc, peer: str) -> None:
    for _ in range(1800):
        try:
            check(url, peer)
            return
        except RuntimeError:
            if proc.poll() is not None:
                raise
            time.sleep(0.1)
    check(url, peer)


def h2load(url: str, requests: int, args: list[str]) -> dict:
    """A run of `requests` requests (h2load's timed mode, -D, does not reconnect after
    `Connection: close`, so both h2load rows are sized by count instead)."""
    cmd = ["taskset", "-c", procs.LOAD_CORE, "h2load", "-t1", *args, "-n", str(requests), url]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=600).stdout
    done = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    req = re.search(
        r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed,"
        r" (\d+) errored", out
    )  # fmt: skip
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b", out)
    proto = re.search(r"Application protocol: (\S+)", out)
    tls = re.search(r"TLS Protocol: (\S+)", out)
    if not (done and req and status):
        raise RuntimeError(f"cannot read h2load output:\n{out}")
    return {
        "rps": float(done.group(1)),
        "mean_ms": float(mean.group(1)) * loadgen.UNIT_MS[mean.group(2)] if mean else None,
        "non_2xx": sum(int(g) for g in status.groups()[1:]),
        "errors": int(req.group(4)) + int(req.group(5)),
        "alpn": proto.group(1) if proto else "?",
        "tls": tls.group(1) if tls else "?",
    }


def full_handshakes(url: str, seconds: float) -> dict:
    """New sessions only: `openssl s_time -new` never offers one back (h2load and wrk do
    resume with the server's TLS 1.3 tickets), each connection one GET."""
    host_port, _, path = url.removeprefix("https://").partition("/")
    cmd = ["taskset", "-c", procs.LOAD_CORE, "openssl", "s_time", "-connect", host_port]
    cmd += ["-new", "-time", f"{max(1, round(seconds))}", "-www", f"/{path}"]
    started = time.monotonic()
    clients = [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(S_TIME_CLIENTS)
    ]
    outs = [c.communicate(timeout=seconds + 120)[0] for c in clients]
    elapsed = time.monotonic() - started
    counts = [re.search(r"(\d+) connections in [\d.]+s;", out) for out in outs]
    if not all(counts) or any(c.returncode for c in clients):
        raise RuntimeError(f"openssl s_time against {url} failed:\n{outs[0][-2000:]}")
    # s_time reads the answers without looking at their status (None: not counted).
    rps = sum(int(c.group(1)) for c in counts) / elapsed
    return {"rps": rps, "non_2xx": None, "errors": None}


def measure(scenario: str, url: str, seconds: float, rate: float, pid: int) -> dict:
    """One run of about `seconds` (`rate`: the peer's req/s in its warm-up run), with the CPU
    time per request of the proxy's processes (`pid` and its children) over the run: none
    of these generators warms up, so the whole run is the window."""
    with cputime.Sampler(pid) as sampler:
        started = time.monotonic()
        got = _generate(scenario, url, seconds, rate)
        elapsed = time.monotonic() - started
    cpu = sampler.window(sampler.samples[0][0], sampler.samples[-1][0])
    # h2load runs a count; wrk and s_time run a time and report a rate.
    served = got.pop("requests", None) or got["rps"] * elapsed
    got["cpu_us"] = cputime.per_request(cpu, round(served)).total_us
    return got


def _generate(scenario: str, url: str, seconds: float, rate: float) -> dict:
    requests = max(20 * CONNECTIONS, round(rate * seconds))
    if scenario == "https_keepalive":
        m = loadgen.wrk(url, PLAIN, seconds, CONNECTIONS)
        return {
            "rps": m.rps,
            "p99_ms": m.p99_ms,
            "non_2xx": m.other,
            "errors": m.errors,
            "requests": m.requests,
        }
    if scenario == "full_handshakes":
        return full_handshakes(url, seconds)
    if scenario == "resumed_handshakes":
        flags = ["--h1", "-c", str(CONNECTIONS), "-H", "Connection: close"]
        return {**h2load(url, requests, flags), "requests": requests}
    flags = ["-c", str(H2_CONNECTIONS), "-m", str(H2_STREAMS), "--npn-list", "h2"]
    got = h2load(url, requests, flags)
    if got["alpn"] != "h2":
        raise RuntimeError(f"h2_tls against {url} negotiated {got['alpn']}, not h2")
    return {**got, "requests": requests}


SCENARIO_NAMES = ("https_keepalive", "full_handshakes", "resumed_handshakes", "h2_tls")


def render(args, command: str, rows: dict) -> str:
    def fmt(v, spec):
        return "" if v is None else format(v, spec)

    lines = [
        f"## pygate vs nginx over TLS: HTTPS keep-alive, new handshakes, HTTP/2 "
        f"({report.utc_now()})",
        "",
        f"Command (from the repository root): `{command}`",
        "",
        f"Machine: {report.machine_line()}; {h2load_version()}.",
        "Each proxy pinned alone to core 0 with one worker; upstream nginx and the generator "
        f"on core 1; {args.runs} alternating runs of {args.duration:g} s per row, medians "
        "shown. The same self-signed ECDSA P-256 certificate on both; TLS 1.2 and 1.3 offered, "
        "h2load negotiated "
        f"{'/'.join(sorted(tls_seen(rows)))} with both. nginx 1.22 `listen ... ssl http2`; pygate "
        "`listeners[].tls` with `http2.over_tls`. Both proxy `GET /plain/item` to the same "
        "upstream over HTTP/1.1 keep-alive, with no access log on nginx (pygate writes its "
        "call log, as in the suite's `plain`).",
        "",
        "- `https_keepalive`: `wrk -t1 -c50` over TLS, keep-alive (one handshake per "
        "connection): req/s and p99.",
        f"- `full_handshakes`: {S_TIME_CLIENTS} `openssl s_time -new -www /plain/item` "
        "clients side by side: new connections/s with a full handshake each; resumption is "
        "off on the client side (s_time -new offers no session, checked with nginx's "
        "`$ssl_session_reused`). The servers keep their defaults (nginx's tickets on, "
        "rustls's tickets on). OpenSSL on the generator core does its half of each "
        "handshake too, so read the ratio.",
        "- `resumed_handshakes`: `h2load --h1 -c50 -H 'Connection: close'`: every request on "
        "a new connection; h2load offers the TLS 1.3 ticket the server issued, so these are "
        "PSK resumptions on both peers (in a separate check nginx logged 195 of 200 "
        "connections as `$ssl_session_reused`; rustls issues tickets too).",
        "- `n/a`: s_time does not count statuses; both peers answered 200 over HTTP/1.1 "
        "and h2 (curl) before the runs.",
        f"- `h2_tls`: `h2load -c{H2_CONNECTIONS} -m{H2_STREAMS} --npn-list h2` (ALPN h2 "
        "checked): req/s; latency is h2load's mean time per request (it prints no p99).",
        "- h2load rows run `-n N`, N sized from each peer's 1 s warm-up rate so a run lasts "
        "about the duration (h2load's timed mode does not reconnect after `Connection: close`).",
        "",
        "- CPU us/req: user + system time of the proxy's processes (pygate's process, "
        "nginx's master and worker) from /proc over each run, divided by the requests (or "
        "connections) it served; pygate's is the gateway process alone: its log daemon "
        "(`pygate logd`, on by default) is not counted.",
        "",
        "| scenario | proxy | req/s | min-max | p99 ms | mean ms | pygate/nginx "
        "| CPU us/req | CPU pygate/nginx | non-2xx | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in [s for s in SCENARIO_NAMES if (s, "nginx") in rows]:
        base = report.median([s["rps"] for s in rows[(scenario, "nginx")]])
        base_cpu = report.median([s["cpu_us"] for s in rows[(scenario, "nginx")]])
        for peer in ("pygate", "nginx"):
            ms = rows[(scenario, peer)]
            rps = report.median([s["rps"] for s in ms])
            cpu = report.median([s["cpu_us"] for s in ms])
            p99 = [s["p99_ms"] for s in ms if s.get("p99_ms") is not None]
            mean = [s["mean_ms"] for s in ms if s.get("mean_ms") is not None]
            mine = peer == "pygate"
            ratio = f"**{rps / base:.2f}**" if mine and base else ""
            cpu_ratio = f"**{cpu / base_cpu:.2f}**" if mine and base_cpu else ""
            lines.append(
                f"| {scenario} | {peer} | {rps:,.0f} | {min(s['rps'] for s in ms):,.0f}-"
                f"{max(s['rps'] for s in ms):,.0f} "
                f"| {fmt(report.median(p99) if p99 else None, '.3f')} "
                f"| {fmt(report.median(mean) if mean else None, '.3f')} | {ratio} "
                f"| {cpu:.1f} | {cpu_ratio} "
                f"| {total(ms, 'non_2xx')} | {total(ms, 'errors')} |"
            )
    return "\n".join(lines)


def total(ms: list[dict], key: str) -> str:
    values = [s[key] for s in ms if s[key] is not None]
    return str(sum(values)) if values else "n/a"


def tls_seen(rows: dict) -> set[str]:
    return {s["tls"] for ms in rows.values() for s in ms if "tls" in s}


def h2load_version() -> str:
    out = subprocess.run(["h2load", "--version"], capture_output=True, text=True)
    return out.stdout.strip() or "h2load"


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--no-write", action="store_true", help="print only")
    p.add_argument("--scenarios", default=",".join(SCENARIO_NAMES), help="comma-separated subset")
    p.add_argument("--python", default=sys.executable, help="interpreter of the pygate to run")
    args = p.parse_args(argv)
    scenarios = [s for s in args.scenarios.split(",") if s]
    if unknown := set(scenarios) - set(SCENARIO_NAMES):
        p.error(f"unknown scenarios {sorted(unknown)}; choose from {', '.join(SCENARIO_NAMES)}")
    for tool in ("nginx", "taskset", "wrk", "h2load", "curl"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install nginx-light wrk nghttp2-client curl)")
    command = "python benchmarks/tls_h2_vs_nginx.py " + " ".join(shlex.quote(a) for a in argv)
    tmp = procs.world_readable_dir(Path(tempfile.mkdtemp(prefix="pygate-tls-")))
    cert, key = make_cert(procs.world_readable_dir(tmp / "pki"))
    upstream_proc, upstream = start_upstream(tmp / "upstream")
    running = []
    try:
        gw, gw_port = start_pygate(upstream, tmp / "pygate", cert, key, args.python)
        running.append((gw, signal.SIGTERM))
        ngx, ngx_port = start_nginx(upstream, procs.world_readable_dir(tmp / "nginx"), cert, key)
        running.append((ngx, signal.SIGQUIT))
        urls = {
            "pygate": f"https://127.0.0.1:{gw_port}{PLAIN.path}",
            "nginx": f"https://127.0.0.1:{ngx_port}{PLAIN.path}",
        }
        for peer, proc in (("pygate", gw), ("nginx", ngx)):
            wait_tls(urls[peer], proc, peer)
        rows: dict[tuple[str, str], list[dict]] = {}
        pids = {"pygate": gw.pid, "nginx": ngx.pid}
        for scenario in scenarios:
            # Warm pools and caches; the rate sizes the h2load runs to about --duration.
            rates = {
                peer: measure(scenario, url, 1.0, 0, pids[peer])["rps"]
                for peer, url in urls.items()
            }
            for run in range(args.runs):
                order = list(urls) if run % 2 == 0 else list(reversed(urls))
                for peer in order:
                    got = measure(scenario, urls[peer], args.duration, rates[peer], pids[peer])
                    rows.setdefault((scenario, peer), []).append(got)
                    print(
                        f"{scenario:15} {peer:7} run {run + 1}: {got['rps']:>10,.0f} req/s  "
                        f"cpu {got['cpu_us']:.1f} us/req  "
                        f"non-2xx {total([got], 'non_2xx')}  errors {total([got], 'errors')}",
                        flush=True,
                    )
    finally:
        for proc, sig in running:
            procs.stop(proc, sig)
        procs.stop(upstream_proc, signal.SIGQUIT)
        shutil.rmtree(tmp, ignore_errors=True)
    text = render(args, command, rows)
    print(text)
    if not args.no_write:
        report.write_section(SECTION, text)
        print(f"wrote section {SECTION!r} of {report.RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
