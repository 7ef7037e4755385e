"""logd's Unix socket: who may connect, and what a connected client may do.

Threats: another local user writing forged rows or reading the call log through the
socket; a client of another config (or a stale socket path) reading another store's
data; a client skipping the identity exchange; inserts aimed at other tables; queries
that reach files or the network. Run against a real logd started by `pygate serve`.
"""

from __future__ import annotations

import json
import os
import socket
import stat

import orjson
import pytest
import yaml
from support.configs import simple_config
from support.gateway import run_cli
from support.net import free_port

from pygate.logd import protocol as p

LOG = {"store": "chdb://./data", "daemon": {"enabled": True}}


@pytest.fixture
def logd_gateway(make_gateway, upstreams):
    return make_gateway(simple_config(upstreams, log=dict(LOG)), name="g")


def hello_payload(gateway, **override) -> bytes:
    store = f"chdb://{gateway.workdir / 'data'}"
    import hashlib

    ident = {
        "config": str(gateway.config_path),
        "store": store,
        "store_fingerprint": hashlib.sha256(store.encode()).hexdigest()[:16],
        "role": "cli",
    }
    ident.update(override)
    return orjson.dumps(ident)


def connect(gateway) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(gateway.workdir / "data-logd.sock"))
    return sock


def test_socket_is_private_to_its_owner(logd_gateway):
    info = os.stat(logd_gateway.workdir / "data-logd.sock")
    assert stat.S_IMODE(info.st_mode) == 0o600 and info.st_uid == os.getuid()


@pytest.mark.skipif(os.getuid() != 0, reason="needs root to act as another uid")
def test_another_uid_is_refused_even_when_the_mode_lets_it_in(logd_gateway):
    path = logd_gateway.workdir / "data-logd.sock"
    # Open every DAC door, so only the SO_PEERCRED check stands in the way.
    os.chmod(path, 0o666)
    modes = {d: os.stat(d).st_mode for d in [logd_gateway.workdir, *logd_gateway.workdir.parents]}
    for directory, mode in modes.items():
        os.chmod(directory, mode | 0o011)
    try:
        answer = _as_uid_65534(str(path), hello_payload(logd_gateway))
    finally:
        os.chmod(path, 0o600)
        for directory, mode in modes.items():
            os.chmod(directory, stat.S_IMODE(mode))
    # Closed (or reset, our HELLO unread) without a byte of answer.
    assert answer == b"closed"
    assert "refused a connection from another user" in logd_gateway.log_text()


def _as_uid_65534(path: str, hello: bytes) -> bytes:
    """Connect and say HELLO as uid 65534 in a forked child; what it got back."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            os.setgid(65534)
            os.setuid(65534)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(20)
            sock.connect(path)
            try:
                p.send_frame(sock, p.HELLO, hello)
                got = sock.recv(100)
            except (BrokenPipeError, ConnectionResetError):
                got = b""
            os.write(write_end, got or b"closed")
        except BaseException as exc:
            os.write(write_end, f"error {exc!r}".encode())
        finally:
            os._exit(0)
    os.close(write_end)
    os.waitpid(pid, 0)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read()


def test_wrong_store_identity_gets_no_data(logd_gateway):
    with connect(logd_gateway) as sock:
        p.send_frame(sock, p.HELLO, hello_payload(logd_gateway, store_fingerprint="0" * 16))
        status, message = p.recv_frame(sock)
        assert status == p.WRONG_STORE and b"this logd serves config" in message
        # The connection is over: a query sent now gets nothing back.
        try:
            p.send_frame(sock, p.QUERY, p.pack_strings("TSV") + b"SELECT 1")
            assert p.recv_frame(sock) is None
        except (BrokenPipeError, ConnectionResetError):
            pass


def test_requests_before_hello_are_dropped(logd_gateway):
    with connect(logd_gateway) as sock:
        p.send_frame(sock, p.QUERY, p.pack_strings("TSV") + b"SELECT 1")
        assert sock.recv(100) == b""


def test_inserts_only_into_log_tables_and_queries_stay_sandboxed(logd_gateway):
    with connect(logd_gateway) as sock:
        p.send_frame(sock, p.HELLO, hello_payload(logd_gateway))
        assert p.recv_frame(sock)[0] == p.OK
        p.send_frame(sock, p.INSERT, p.pack_strings("pygate.bench_runs", "t") + b"x")
        status, message = p.recv_frame(sock)
        assert status == p.FAILED and b"does not insert into" in message
        for sql in (
            "SELECT * FROM file('/etc/passwd', 'LineAsString')",
            "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
            "DROP TABLE pygate.requests",
        ):
            p.send_frame(sock, p.QUERY, p.pack_strings("TSV") + sql.encode())
            status, message = p.recv_frame(sock)
            assert status == p.REFUSED, (sql, message)  # refused by the check, not run
            assert b"root:" not in message


def test_cli_of_another_config_gets_a_clear_error_not_the_data(logd_gateway, upstreams, tmp_path):
    # Config B names A's socket but its own store: the CLI must refuse, exit 2.
    other = tmp_path / "other"
    other.mkdir()
    config = simple_config(upstreams, log={**LOG, "daemon": {
        "enabled": True, "socket": str(logd_gateway.workdir / "data-logd.sock")}})  # fmt: skip
    config["listen"] = f"127.0.0.1:{free_port()}"
    config["admin"] = {"listen": f"127.0.0.1:{free_port()}"}  # no gateway of B answers
    (other / "b.yaml").write_text(yaml.safe_dump(config))
    result = run_cli(
        "logs", "query", "--config", str(other / "b.yaml"), "SELECT 1", "--format", "json"
    )
    assert result.returncode == 2, result.stderr
    assert str(logd_gateway.config_path) in result.stderr
    assert str(other / "b.yaml") in result.stderr
    assert result.stdout == ""
    json.dumps(result.stderr)


def test_logs_serve_statements_are_checked_in_logd_whoever_sends_them(logd_gateway, tmp_path):
    """A same-uid client that skips `logs serve` and its users, and sends SERVE_RUN frames
    itself, still gets only checked statements on logd's read-only or INSERT-only path:
    no DDL, no file or network access, no unpinned settings, even flagged writable."""
    from pygate.chserver import wire
    from pygate.chserver.engine import Statement

    target = tmp_path / "written.txt"

    def run(sock, sql, writable=True, settings=None):
        statement = Statement("default", settings or {}, writable, "TSV", sql)
        p.send_frame(sock, p.SERVE_RUN, wire.encode_statement(statement))
        return p.recv_frame(sock)

    with connect(logd_gateway) as sock:
        p.send_frame(sock, p.HELLO, hello_payload(logd_gateway))
        assert p.recv_frame(sock)[0] == p.OK
        for sql in (
            "DROP TABLE pygate.requests",
            "CREATE TABLE pygate.x (a Int8) ENGINE = Memory",
            "SELECT * FROM file('/etc/passwd', 'LineAsString')",
            f"SELECT 1 INTO OUTFILE '{target}'",
            f"INSERT INTO FUNCTION file('{target}', 'TSV') SELECT 1",
            "SELECT * FROM url('http://127.0.0.1:1/', 'LineAsString')",
            "SELECT * FROM system.users",
            "SYSTEM FLUSH LOGS",
        ):
            status, answer = run(sock, sql)
            assert status == p.CH_ERROR, (sql, answer)
            error = wire.decode_error(answer)
            assert error.code in (164, 497), (sql, error.message)
            assert "root:" not in error.message
        for settings in ({"allow_ddl": "1"}, {"dialect": "'prql'"}):
            status, answer = run(sock, "SELECT 1", settings=settings)
            assert status == p.CH_ERROR and wire.decode_error(answer).code == 164, settings
        # Not flagged writable: even an INSERT into pygate's tables is refused.
        status, answer = run(
            sock, "INSERT INTO pygate.requests (request_id) VALUES ('x')", writable=False
        )
        assert status == p.CH_ERROR and wire.decode_error(answer).code == 164
        # A frame that is no statement is refused; the connection still answers.
        p.send_frame(sock, p.SERVE_RUN, b"\x05\x00\x00\x00{bad}")
        assert p.recv_frame(sock)[0] == p.FAILED
        status, answer = run(sock, "EXISTS TABLE pygate.requests", writable=False)
        assert status == p.OK and wire.decode_outcome(answer).body == b"1\n"
    assert not target.exists()
