"""The admin API's state: kept across restarts, replaced when the file's entities are
edited (the file wins, audited as file:<path>), exported and imported as YAML; audit
rows wait in the state while the log store is down."""

from __future__ import annotations

import copy

import yaml
from support.admin_api import AdminApi
from support.client import get
from support.gateway import run_cli
from support.logs_server import LogsServer
from support.net import wait_until
from test_admin_api import admin_config


def test_restart_keeps_admin_changes(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    api.ok("POST", "/routes", {"name": "kept", "paths": ["/kept/*"], "upstream": "echo"}, 201)
    api.ok("POST", "/consumers/alice/keys", {"key": "alice-key-9"}, 201)
    keys_before = api.ok("GET", "/consumers/alice")["keys"]
    assert len(keys_before) == 2 and "alice-key" not in str(keys_before)
    assert gw.stop() == 0
    gw.start()  # the same file: its entities did not change, so the state wins
    assert get(gw.url("/kept/x")).status == 200
    # Keys are shown as fingerprints; the same two (the fingerprint key is kept too).
    assert api.ok("GET", "/consumers/alice")["keys"] == keys_before
    assert (gw.workdir / "pygate-admin.db").exists()
    # A SIGHUP with the same file keeps the admin changes too.
    assert gw.reload() == "reloaded"
    assert get(gw.url("/kept/x")).status == 200


def test_editing_the_files_entities_wins(make_gateway, upstreams):
    cfg = admin_config(upstreams)
    gw = make_gateway(cfg)
    api = AdminApi(gw)
    api.ok("POST", "/routes", {"name": "api-made", "paths": ["/made/*"], "upstream": "echo"}, 201)

    # A setting outside the entities changes: the admin state still wins.
    settings_only = copy.deepcopy(cfg)
    settings_only["shutdown_grace"] = "5s"
    gw.write_config(settings_only)
    assert gw.reload() == "reloaded"
    assert get(gw.url("/made/x")).status == 200

    # The file's routes change: they replace the state (the API's route is gone).
    edited = copy.deepcopy(settings_only)
    edited["routes"].append({"name": "from-file", "paths": ["/file/*"], "upstream": "echo"})
    gw.write_config(edited)
    assert gw.reload() == "reloaded"
    assert get(gw.url("/file/x")).status == 200
    assert get(gw.url("/made/x")).status == 404
    assert [r["name"] for r in api.ok("GET", "/routes")["data"]] == ["echo", "from-file"]
    rows = api.audit("&entity=route")
    actor = f"file:{gw.config_path.resolve()}"
    assert {(r["actor"], r["action"], r["entity_name"]) for r in rows[:2]} == {
        (actor, "create", "from-file"), (actor, "delete", "api-made")}  # fmt: skip

    # After a restart the state (from the file now) is what serves; a later API change
    # survives the next restart as usual.
    api.ok("DELETE", "/routes/from-file", status=204)
    assert gw.stop() == 0
    gw.start()
    assert get(gw.url("/file/x")).status == 404
    # The same edited file once more is no edit: no new import.
    assert [r["actor"] for r in api.audit("&entity=route")][0] == "admin"


def test_export_then_import_round_trip(make_gateway, upstreams, tmp_path):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    api.ok("POST", "/upstreams", {"name": "u2", "targets": [upstreams.addr("exact")],
                                  "read_timeout": "5s"}, 201)  # fmt: skip
    api.ok("POST", "/routes", {"name": "r2", "paths": ["/r2/*"], "upstream": "u2",
                               "plugins": {"key-auth": None}}, 201)  # fmt: skip
    exported = api.ok("GET", "/config?format=json")
    assert exported["routes"][1]["plugins"] == {"key-auth": {}}
    status, text = api.get("/config")
    assert status == 200 and yaml.safe_load(text) == exported

    out = tmp_path / "entities.yaml"
    res = gw.cli("admin", "export", "-o", str(out))
    assert res.returncode == 0, res.stderr
    assert yaml.safe_load(out.read_text()) == exported
    res = run_cli("admin", "export", "--config", str(gw.config_path))
    assert res.returncode == 0 and yaml.safe_load(res.stdout) == exported

    # Change everything, then import the export: back to where it was, in one step.
    api.ok("DELETE", "/routes/r2", status=204)
    api.ok("DELETE", "/upstreams/u2", status=204)
    res = gw.cli("admin", "import", str(out))
    assert res.returncode == 0, res.stderr
    assert api.ok("GET", "/config?format=json") == exported
    assert get(gw.url("/r2/x"), headers={"apikey": "alice-key-1"}).json()["target"] == "exact"

    # An invalid document is refused as a whole, naming the fields; nothing changes.
    bad = copy.deepcopy(exported)
    bad["routes"][1]["paths"] = ["no-slash"]
    bad["upstreams"].append({"name": "u3", "targets": []})
    bad_file = tmp_path / "bad.yaml"
    bad_file.write_text(yaml.safe_dump(bad))
    res = gw.cli("admin", "import", str(bad_file))
    assert res.returncode == 2
    assert "upstreams[2].targets" in res.stderr and "routes[1].paths[0]" in res.stderr
    assert api.ok("GET", "/config?format=json") == exported
    status, answer = api.call("POST", "/config", raw=b"listen: 1.2.3.4:5\n",
                              content_type="application/yaml")  # fmt: skip
    assert status == 400 and answer["problems"][0]["path"] == "listen"

    # A YAML body replaces everything (here: only the upstream and route "echo" stay).
    minimal = {"upstreams": exported["upstreams"][:1], "routes": exported["routes"][:1]}
    status, answer = api.call("POST", "/config", raw=yaml.safe_dump(minimal).encode(),
                              content_type="application/yaml")  # fmt: skip
    assert status == 200 and answer == {**minimal, "consumers": []}
    assert get(gw.url("/r2/x")).status == 404


def test_audit_rows_wait_while_the_log_store_is_down(make_gateway, upstreams, tmp_path):
    server = LogsServer(tmp_path / "store", allow_writes=True).start()
    try:
        cfg = admin_config(upstreams)
        cfg["log"] = {"store": server.sink_url, "flush_interval": "100ms"}
        gw = make_gateway(cfg)
        api = AdminApi(gw)
        api.ok("POST", "/routes", {"name": "a0", "paths": ["/a0"], "upstream": "echo"}, 201)
        assert [r["entity_name"] for r in api.audit() if r["actor"] == "admin"] == ["a0"]

        assert server.stop() == 0
        for i in range(1, 4):  # changes still go live while their audit rows cannot ship
            api.ok("POST", "/routes", {"name": f"a{i}", "paths": [f"/a{i}"], "upstream": "echo"},
                   status=201)  # fmt: skip
            assert get(gw.url(f"/a{i}")).status == 200
        status, answer = api.get("/audit")
        assert status == 503 and answer["error"] == "unavailable"
        assert "audit log:" in gw.log_text()  # the failure is reported, not swallowed

        server.start()

        def shipped() -> list:
            status, answer = api.get("/audit?limit=1000")
            return answer["data"] if status == 200 and answer["pending"] == 0 else []

        rows = wait_until(shipped, 60, what="audit rows shipped after the store came back")
        assert [r["entity_name"] for r in rows if r["actor"] == "admin"] == ["a3", "a2", "a1", "a0"]
        # Each row once: the seed import (3 entities) and the 4 changes.
        assert server.client().command("SELECT count() FROM pygate.audit_log") == 7 == len(rows)
    finally:
        server.stop()
        server.kill()
