"""The admin API through the real gateway: CRUD of every entity going live, validation
errors naming the field, changes under load with zero failed requests, the audit log,
tokens. State across restarts, file edits and export/import: test_admin_state.py."""

from __future__ import annotations

import copy

from support.admin_api import ADMIN_SETTINGS, OPS_TOKEN, AdminApi, problem_paths
from support.client import get
from support.configs import simple_config
from support.net import wait_until
from test_reload import Hammer


def admin_config(upstreams) -> dict:
    cfg = simple_config(upstreams, admin=copy.deepcopy(ADMIN_SETTINGS))
    cfg["consumers"] = [{"name": "alice", "keys": ["alice-key-1"]}]
    return cfg


def test_no_or_wrong_token_is_401_json(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    for token in (None, "wrong"):
        status, answer = AdminApi(gw, token).get("/upstreams")
        assert status == 401 and answer["error"] == "unauthorized"
        assert "admin token" in answer["message"]
        status, answer = AdminApi(gw, token).post("/upstreams", {"name": "x"})
        assert status == 401
    assert AdminApi(gw, OPS_TOKEN).get("/upstreams")[0] == 200


def test_upstream_crud(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    target = upstreams.addr("echo")
    assert api.ok("GET", "/upstreams")["data"] == admin_config(upstreams)["upstreams"]
    created = api.ok("POST", "/upstreams", {"name": "u2", "targets": [target]}, 201)
    assert created == {"name": "u2", "targets": [target]}
    status, answer = api.post("/upstreams", {"name": "u2", "targets": [target]})
    assert status == 409 and answer["error"] == "conflict"
    replaced = api.ok("PUT", "/upstreams/u2", {"targets": [target], "read_timeout": "5s"})
    assert replaced == {"name": "u2", "targets": [target], "read_timeout": "5s"}
    patched = api.ok("PATCH", "/upstreams/u2", {"read_timeout": None, "retries": 0})
    assert patched == {"name": "u2", "targets": [target], "retries": 0}
    assert api.ok("GET", "/upstreams/u2") == patched
    assert api.ok("PUT", "/upstreams/u3", {"targets": [target]}, 201)["name"] == "u3"
    # In use by the route "echo": refused, and the answer says by whom.
    status, answer = api.delete("/upstreams/echo")
    assert status == 409 and '"echo"' in answer["message"]
    api.ok("DELETE", "/upstreams/u2", status=204)
    api.ok("DELETE", "/upstreams/u3", status=204)
    for method in ("GET", "DELETE"):
        status, answer = api.call(method, "/upstreams/u2")
        assert status == 404 and answer["error"] == "not_found"
    assert [u["name"] for u in api.ok("GET", "/upstreams")["data"]] == ["echo"]


def test_route_consumer_and_plugin_changes_go_live(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    assert get(gw.url("/r1/x")).status == 404
    api.ok("POST", "/routes", {"name": "r1", "paths": ["/r1/*"], "upstream": "echo"}, 201)
    resp = get(gw.url("/r1/x"))
    assert resp.status == 200 and resp.json()["path"] == "/r1/x"

    assert api.ok("PUT", "/routes/r1/plugins/key-auth", None, 201) == {}
    assert get(gw.url("/r1/x")).status == 401
    assert get(gw.url("/r1/x"), headers={"apikey": "alice-key-1"}).status == 200
    assert api.ok("GET", "/routes/r1/plugins") == {"key-auth": {}}

    # Consumers and keys.
    api.ok("POST", "/consumers", {"name": "bob", "keys": ["bob-key-1"]}, 201)
    assert get(gw.url("/r1/x"), headers={"apikey": "bob-key-1"}).status == 200
    made_up = api.ok("POST", "/consumers/bob/keys", None, 201)
    new_key = made_up["key"]  # a made-up key is shown this once, with its fingerprint
    assert made_up["fingerprint"].startswith("sha256:")
    assert get(gw.url("/r1/x"), headers={"apikey": new_key}).status == 200
    # A key the caller gave is not echoed back: its fingerprint is.
    given = api.ok("POST", "/consumers/bob/keys", {"key": "bob-key-2"}, 201)
    assert set(given) == {"fingerprint"} and given["fingerprint"].startswith("sha256:")
    status, answer = api.post("/consumers/bob/keys", {"key": "alice-key-1"})
    assert status == 409 and "another consumer" in answer["message"]
    api.ok("DELETE", f"/consumers/bob/keys/{new_key}", status=204)
    assert get(gw.url("/r1/x"), headers={"apikey": new_key}).status == 401
    shown = api.ok("GET", "/consumers/bob")["keys"]
    assert len(shown) == 2 and shown[1] == given["fingerprint"]
    assert "bob-key-1" not in str(shown)
    api.ok("DELETE", f"/consumers/bob/keys/{shown[0]}", status=204)  # by fingerprint
    assert get(gw.url("/r1/x"), headers={"apikey": "bob-key-1"}).status == 401
    status, answer = api.delete("/consumers/bob/keys/bob-key-2")
    assert status == 409 and "at least one key" in answer["message"]
    api.ok("DELETE", "/consumers/bob", status=204)
    assert get(gw.url("/r1/x"), headers={"apikey": "bob-key-2"}).status == 401

    # Plugin configs: a rate limit replaces nothing else, then goes away again.
    limit = {"rate": 1, "per": "60s", "by": "ip"}
    assert api.ok("PUT", "/routes/r1/plugins/rate-limit", limit, 201) == limit
    assert api.ok("GET", "/routes/r1/plugins/rate-limit") == limit
    first = get(gw.url("/r1/x"), headers={"apikey": "alice-key-1"})
    assert first.status == 200 and first.header("x-ratelimit-limit") == "1"
    assert get(gw.url("/r1/x"), headers={"apikey": "alice-key-1"}).status == 429
    api.ok("DELETE", "/routes/r1/plugins/rate-limit", status=204)
    api.ok("DELETE", "/routes/r1/plugins/key-auth", status=204)
    assert api.get("/routes/r1/plugins/key-auth")[0] == 404
    assert get(gw.url("/r1/x")).status == 200

    # A Python plugin: its chain is built on the Python side as on a reload.
    mock = {"status": 201, "json": {"mocked": True}}
    assert api.ok("PUT", "/routes/r1/plugins/mock", mock, 201) == mock
    resp = get(gw.url("/r1/x"))
    assert resp.status == 201 and resp.json() == {"mocked": True}
    api.ok("DELETE", "/routes/r1/plugins/mock", status=204)
    assert get(gw.url("/r1/x")).json()["path"] == "/r1/x"

    # A route can move to another upstream (PATCH), then goes away.
    api.ok("POST", "/upstreams", {"name": "other", "targets": [upstreams.addr("exact")]}, 201)
    api.ok("PATCH", "/routes/r1", {"upstream": "other"})
    assert get(gw.url("/r1/x")).json()["target"] == "exact"
    api.ok("DELETE", "/routes/r1", status=204)
    assert get(gw.url("/r1/x")).status == 404


def test_validation_errors_name_the_field(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    status, answer = api.post("/routes", {"name": "bad", "paths": ["/ok", "no-slash"],
                                          "upstream": "echo"})  # fmt: skip
    assert status == 400 and problem_paths(answer) == ["routes[1].paths[1]"]
    assert "expected a path" in answer["problems"][0]["message"]
    status, answer = api.post("/routes", {"name": "bad", "paths": ["/b"], "upstream": "nope"})
    assert status == 400 and problem_paths(answer) == ["routes[1].upstream"]
    assert 'unknown upstream "nope"' in answer["problems"][0]["message"]
    status, answer = api.put("/routes/echo/plugins/rate-limit", {"rate": "fast"})
    assert status == 400 and problem_paths(answer) == ["routes[0].plugins.rate-limit.rate"]
    status, answer = api.put("/routes/echo/plugins/no-such-plugin", {})
    assert status == 400 and problem_paths(answer) == ["routes[0].plugins.no-such-plugin"]
    status, answer = api.patch("/upstreams/echo", {"retries": -1, "balance": "random"})
    assert status == 400
    assert sorted(problem_paths(answer)) == ["upstreams[0].balance", "upstreams[0].retries"]
    status, answer = api.put("/upstreams/echo", {"name": "renamed", "targets": ["1.2.3.4:5"]})
    assert status == 400 and problem_paths(answer) == ["upstreams[0].name"]
    # Checks across entities name the new one (a path another route has).
    status, answer = api.post("/routes", {"name": "dup", "paths": ["/echo/*"], "upstream": "echo"})
    assert status == 400 and problem_paths(answer) == ["routes[1].paths[0]"]
    status, answer = api.call("POST", "/upstreams", raw=b"{not json")
    assert status == 400 and answer["problems"][0]["path"] == ""
    # Nothing of it was applied.
    assert api.ok("GET", "/config?format=json")["routes"] == admin_config(upstreams)["routes"]


def test_changes_under_load_fail_no_request(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    echo, other = upstreams.addr("echo"), upstreams.addr("exact")
    with Hammer(gw.url("/echo/hammer")) as hammer:
        for i in range(24):
            step = i % 4
            if step == 0:
                api.ok("POST", "/routes", {"name": f"n{i}", "paths": [f"/n{i}/*"],
                                           "upstream": "echo"}, 201)  # fmt: skip
            elif step == 1:  # the hammered route's upstream gets another target and back
                api.ok("PATCH", "/upstreams/echo", {"targets": [echo, other] if i % 8 == 1
                                                    else [echo]})  # fmt: skip
            elif step == 2:
                api.ok("PUT", "/routes/echo/plugins/cors", {"allow_origins": ["*"]}, 201)
            else:
                api.ok("DELETE", "/routes/echo/plugins/cors", status=204)
            before = sum(hammer.outcomes.values())
            wait_until(lambda b=before: sum(hammer.outcomes.values()) >= b + 10, 60)
        assert get(gw.url("/n20/x")).status == 200
    assert hammer.failures == [], hammer.failures[:5]
    assert set(hammer.outcomes) == {"200"} and sum(hammer.outcomes.values()) > 200


def test_audit_log_records_who_what_and_before_after(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api, ops = AdminApi(gw), AdminApi(gw, OPS_TOKEN)
    target = upstreams.addr("echo")
    api.ok("POST", "/upstreams", {"name": "aud", "targets": [target]}, 201)
    ops.ok("PATCH", "/upstreams/aud", {"retries": 1})
    api.ok("POST", "/consumers/alice/keys", {"key": "alice-secret-2"}, 201)
    ops.ok("DELETE", "/upstreams/aud", status=204)
    api.post("/routes", {"name": "never", "paths": ["bad"], "upstream": "echo"})  # refused

    rows = api.audit("&entity=upstream/aud")
    assert [(r["actor"], r["action"]) for r in rows] == [
        ("ops", "delete"), ("ops", "update"), ("admin", "create")]  # fmt: skip
    delete, update, create = rows
    assert create["before"] is None and create["after"] == {"name": "aud", "targets": [target]}
    assert update["before"] == create["after"] and update["after"]["retries"] == 1
    assert delete["after"] is None and delete["request"] == "DELETE /upstreams/aud"
    assert all(r["client"].startswith("127.0.0.1:") and r["entity_kind"] == "upstream"
               for r in rows)  # fmt: skip
    # Keys are fingerprinted: the audit log must not become a list of secrets.
    (key_row,) = api.audit("&entity=consumer/alice")[:1]
    assert "alice-secret-2" not in str(key_row) and len(key_row["after"]["keys"]) == 2
    assert key_row["after"]["keys"][1].startswith("sha256:")
    assert not [r for r in api.audit() if r["entity_name"] == "never"]
    # The rows live with the call logs.
    stored = gw.logs_query(
        "SELECT actor, action FROM pygate.audit_log WHERE entity_name = 'aud' ORDER BY seq"
    )
    assert [(r["actor"], r["action"]) for r in stored] == [
        ("admin", "create"), ("ops", "update"), ("ops", "delete")]  # fmt: skip
    assert api.get("/audit?limit=0")[0] == 400 and api.get("/audit?entity=bogus")[0] == 400
