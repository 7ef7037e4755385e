"""The cluster's Redis password (`cluster.password`) is a secret: it authenticates the nodes
to a real redis-server started with `requirepass`, and appears in no admin API answer, no
/metrics or status output and no log line, also when Redis refuses it. A password written
into the URL is refused by `pygate check` without echoing it."""

from __future__ import annotations

import re

from support.client import get
from support.configs import route, simple_config
from support.gateway import Gateway, run_cli, running
from support.net import wait_until
from support.redis_server import RedisServer

PASSWORD = "redis-pw-7f3e9c1a55"
WRONG = "redis-wrong-pw-0b8d2e"


def _config(upstreams, redis: RedisServer, password: str) -> dict:
    cfg = simple_config(upstreams)
    cfg["log"] = {"enabled": False}
    cfg["cluster"] = {"redis": redis.url, "password": password, "heartbeat": "200ms"}
    cfg["routes"].append(
        route(
            "shared",
            ["/shared/*"],
            "echo",
            plugins={"rate-limit": {"rate": 100, "per": "1s", "by": "route", "scope": "cluster"}},
        )
    )
    return cfg


def _everything_shown(gw: Gateway) -> str:
    shown = [gw.admin_text(p) for p in ("/metrics", "/status", "/config?format=json", "/routes")]
    shown.append(run_cli("status", "--config", str(gw.config_path)).stdout)
    shown.append(gw.log_text())
    return "\n".join(shown)


def test_password_authenticates_and_is_never_shown(upstreams, tmp_path):
    redis = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    try:
        with running(Gateway(tmp_path / "gw", _config(upstreams, redis, PASSWORD))) as gw:
            wait_until(
                lambda: re.search(r"^pygate_cluster_redis_up 1", gw.admin_text("/metrics"), re.M),
                15,
                what="authenticated to Redis",
            )
            assert get(gw.url("/shared/a")).status == 200
            wait_until(
                lambda: "rl:shared" in redis.command("KEYS", "pygate:*"),
                5,
                what="the bucket written with the password",
            )
            assert PASSWORD not in _everything_shown(gw)
    finally:
        redis.stop()


def test_wrong_password_is_not_logged(upstreams, tmp_path):
    redis = RedisServer(tmp_path / "redis", password=PASSWORD).start()
    try:
        with running(Gateway(tmp_path / "gw", _config(upstreams, redis, WRONG))) as gw:
            wait_until(lambda: gw.log_count("is unreachable") == 1, 15, what="refused by Redis")
            # fail_open (the default): served on the node's share meanwhile.
            assert get(gw.url("/shared/a")).status == 200
            shown = _everything_shown(gw)
            assert WRONG not in shown and PASSWORD not in shown
    finally:
        redis.stop()


def test_password_in_url_refused_without_echo(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(
        f"listen: 127.0.0.1:18080\ncluster: {{redis: 'redis://:{PASSWORD}@127.0.0.1:6379/0'}}\n"
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2
    assert "cluster.redis" in res.stderr and "cluster.password" in res.stderr, res.stderr
    assert PASSWORD not in res.stderr + res.stdout
