"""`admin.state: postgresql://...`: three real gateways share one real Postgres (a
throw-away cluster made by initdb / pg_ctl): a change on one node is live on the others
within a second, nodes keep serving their cached config while Postgres is down, and
catch up when it is back."""

from __future__ import annotations

import copy
import threading
import time
import urllib.request

import psycopg
import pytest
from support.admin_api import AdminApi
from support.client import get
from support.gateway import run_cli
from support.net import wait_until
from support.postgres import PgCluster, pg_bin
from test_admin_api import admin_config

pytestmark = pytest.mark.skipif(pg_bin() is None, reason="Debian's postgresql not installed")


@pytest.fixture(scope="module")
def pg():
    cluster = PgCluster().start()
    yield cluster
    cluster.destroy()


@pytest.fixture
def pg_url(pg, request):
    if not pg.running():
        pg.start()
    return pg.create_db("t_" + request.node.name.lower()[:40].replace("[", "_").replace("]", ""))


def pg_config(upstreams, url: str) -> dict:
    cfg = admin_config(upstreams)
    cfg["admin"]["state"] = url
    return cfg


def status_code(url: str) -> int:
    return get(url).status


def wait_live(gateways, path: str, status: int, timeout: float) -> float:
    """Seconds until every gateway answers `path` with `status` (fails past `timeout`)."""
    start = time.monotonic()
    pending = list(gateways)
    while pending:
        pending = [gw for gw in pending if status_code(gw.url(path)) != status]
        if pending and time.monotonic() - start > timeout:
            raise AssertionError(f"not live within {timeout}s on {[g.port for g in pending]}")
        if pending:
            time.sleep(0.02)
    return time.monotonic() - start


def test_change_on_one_node_is_live_on_the_others_within_a_second(make_gateway, upstreams, pg_url):
    cfg = pg_config(upstreams, pg_url)
    a, b, c = (make_gateway(copy.deepcopy(cfg), name=n) for n in ("a", "b", "c"))
    assert status_code(b.url("/shared/x")) == 404
    AdminApi(a).ok("POST", "/routes", {"name": "shared", "paths": ["/shared/*"],
                                       "upstream": "echo"}, 201)  # fmt: skip
    assert wait_live([b, c], "/shared/x", 200, timeout=1.0) < 1.0
    # ...and a delete on C reaches A and B.
    AdminApi(c).ok("DELETE", "/routes/shared", None, 204)
    assert wait_live([a, b], "/shared/x", 404, timeout=1.0) < 1.0
    versions = {gw.status()["state_served_version"] for gw in (a, b, c)}
    assert len(versions) == 1 and versions.pop() >= 3  # file import + create + delete

    # Concurrent writes on two nodes: both survive (version check + re-apply).
    def post(gw, name):
        AdminApi(gw).ok("POST", "/routes", {"name": name, "paths": [f"/{name}/*"],
                                            "upstream": "echo"}, 201)  # fmt: skip

    threads = [threading.Thread(target=post, args=(gw, f"r{i}{gw.port}"))
               for i in range(3) for gw in (a, b)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = {r["name"] for r in AdminApi(c).ok("GET", "/routes")["data"]}
    assert {f"r{i}{gw.port}" for i in range(3) for gw in (a, b)} <= names
    for i in range(3):
        for gw in (a, b):
            wait_live([a, b, c], f"/r{i}{gw.port}/x", 200, timeout=2.0)


def test_migrations_apply_once_and_are_versioned(make_gateway, upstreams, pg_url):
    from pygate.server.admin_api.pgstate import migrations

    cfg = pg_config(upstreams, pg_url)
    make_gateway(copy.deepcopy(cfg), name="a")
    make_gateway(copy.deepcopy(cfg), name="b")
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        applied = rows.fetchall()
    assert applied == [(v, name) for v, name, _ in migrations()]
    assert applied[0][0] == 1


def test_node_keeps_serving_while_postgres_is_down_and_catches_up(
    make_gateway, upstreams, pg, pg_url
):
    cfg = pg_config(upstreams, pg_url)
    a = make_gateway(copy.deepcopy(cfg), name="a")
    b = make_gateway(copy.deepcopy(cfg), name="b")
    AdminApi(a).ok("POST", "/routes", {"name": "cached", "paths": ["/cached/*"],
                                       "upstream": "echo"}, 201)  # fmt: skip
    wait_live([b], "/cached/x", 200, timeout=1.0)
    cache = b.workdir / "pygate-admin-state.cache.json"
    assert cache.stat().st_mode & 0o777 == 0o600

    pg.stop()
    assert b.stop() == 0
    b.start()  # Postgres is down: the cached config is served
    assert status_code(b.url("/cached/x")) == 200
    status = b.status()
    assert status["state_backend"] == "postgresql" and status["state_connected"] is False
    assert status["state_since"] and status["state_version"] >= 2
    text = b.cli("status").stdout
    assert "state_connected" in text and "False" in text
    # Writes need Postgres: a 503 with a JSON body.
    code, answer = AdminApi(b).post("/routes", {"name": "x", "paths": ["/x/*"], "upstream": "echo"})
    assert code == 503 and answer["error"] == "unavailable"
    assert "admin state" in answer["message"]

    pg.start()
    wait_until(lambda: b.status()["state_connected"] is True, timeout=15)
    AdminApi(a).ok("DELETE", "/routes/cached", None, 204)
    wait_live([b], "/cached/x", 404, timeout=1.0)


def test_postgres_restart_under_load_fails_no_request(make_gateway, upstreams, pg, pg_url):
    gw = make_gateway(pg_config(upstreams, pg_url), name="a")
    results: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(gw.url("/echo/x"), timeout=5) as resp:
                    results.append(resp.status)
            except Exception:  # noqa: BLE001 - a failure is what the test counts
                results.append(-1)

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(0.5)
        pg.stop()
        wait_until(lambda: gw.status()["state_connected"] is False, timeout=15)
        time.sleep(0.5)
        pg.start()
        wait_until(lambda: gw.status()["state_connected"] is True, timeout=15)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    assert len(results) > 50
    assert [r for r in results if r != 200] == []


def test_bad_state_url_is_a_config_error_naming_the_field(tmp_path, upstreams):
    for url in ("postgresql://user:pw@:5432/db", "postgresql://user:pw@host:99999/db",
                "postgresql://user:pw@host:5432"):  # fmt: skip
        cfg = pg_config(upstreams, url)
        path = tmp_path / "gw.yaml"
        import yaml

        path.write_text(yaml.safe_dump(cfg))
        res = run_cli("check", "--config", str(path))
        assert res.returncode == 2, res.stderr
        assert "admin.state" in res.stderr and "postgresql://" in res.stderr
        assert "pw" not in res.stderr.replace("postgresql://", "")
