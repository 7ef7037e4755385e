"""Secrets are write-only in the admin API: API keys, basic-auth passwords and jwt
secrets never come back, in entity reads, write answers, /config, exports, error
bodies, the audit log (through /audit and through SQL) or the gateway's own log.
Reads show a keyed fingerprint; a write may give that fingerprint to keep the secret,
so an export imports again without losing a key."""

from __future__ import annotations

import base64
import re
import time

import jwt as pyjwt
import pytest
import yaml
from support.admin_api import AdminApi
from support.client import get
from support.configs import route, simple_config
from support.gateway import Gateway, run_cli, running
from support.net import wait_until

ADMIN_TOKEN = "secrets-test-admin-token"
ALICE_KEY = "alice-api-key-s3cr3t"
BOB_PASSWORD = "bob-basic-pa55word"
JWT_SECRET = "a-jwt-hs256-secret-of-32-bytes-or-more!"
# Written through the API during the tests.
NEW_KEY = "carol-new-api-key-s3cr3t"
NEW_PASSWORD = "dave-new-pa55word"
NEW_JWT_SECRET = "another-jwt-hs256-secret-32-bytes-long!"
WRONG_TYPE_KEY = "erin-key-given-as-one-string"
LISTED_PASSWORD = "frank-password-given-in-a-list"
PROVIDER_KEY = "sk-ai-provider-key-s3cr3t"  # a process setting: never in the admin API
SECRETS = [ADMIN_TOKEN, ALICE_KEY, BOB_PASSWORD, JWT_SECRET, NEW_KEY, NEW_PASSWORD,
           NEW_JWT_SECRET, WRONG_TYPE_KEY, LISTED_PASSWORD, PROVIDER_KEY]  # fmt: skip
FINGERPRINT = re.compile(r"^sha256:[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def secret_gw(upstreams, tmp_path_factory):
    cfg = simple_config(upstreams, admin={"token": ADMIN_TOKEN})
    cfg["consumers"] = [
        {"name": "alice", "keys": [ALICE_KEY]},
        {"name": "bob", "basic_auth": [{"username": "bob", "password": BOB_PASSWORD}]},
    ]
    cfg["routes"] += [
        route("keyed", ["/keyed/*"], "echo", plugins={"key-auth": {}}),
        route("basic", ["/basic/*"], "echo", plugins={"basic-auth": {}}),
        route("jwt-r", ["/jwt/*"], "echo", plugins={"jwt": {"secrets": [JWT_SECRET]}}),
    ]
    cfg["ai"] = {
        "providers": [{"name": "p", "kind": "openai", "base_url": "http://127.0.0.1:9",
                       "keys": [PROVIDER_KEY]}],
        "models": [{"name": "fast", "deployments": [{"model": "p/gpt"}]}],
    }  # fmt: skip
    with running(Gateway(tmp_path_factory.mktemp("gw-secrets"), cfg)) as gateway:
        yield gateway


def assert_no_secret(where: str, text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} leaks {leaked}: {text[:600]}"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def bearer(secret: str) -> dict[str, str]:
    claims = {"sub": "jay", "exp": int(time.time()) + 600}
    return {"Authorization": f"Bearer {pyjwt.encode(claims, secret, algorithm='HS256')}"}


def authenticates(gw: Gateway) -> dict[str, int]:
    return {
        "key": get(gw.url("/keyed/x"), headers={"apikey": ALICE_KEY}).status,
        "basic": get(gw.url("/basic/x"), headers=basic("bob", BOB_PASSWORD)).status,
        "jwt": get(gw.url("/jwt/x"), headers=bearer(JWT_SECRET)).status,
    }


def test_reads_show_fingerprints_only(secret_gw):
    api = AdminApi(secret_gw, ADMIN_TOKEN)
    for path in ("/consumers", "/consumers/alice", "/consumers/bob", "/routes",
                 "/routes/jwt-r", "/routes/jwt-r/plugins", "/routes/jwt-r/plugins/jwt",
                 "/config", "/config?format=json", "/status", "/metrics", "/openapi.json",
                 "/plugins", "/upstreams"):  # fmt: skip
        status, answer = api.get(path)
        assert status == 200, (path, answer)
        assert_no_secret(path, str(answer))
    alice = api.ok("GET", "/consumers/alice")
    bob = api.ok("GET", "/consumers/bob")
    jwt_config = api.ok("GET", "/routes/jwt-r/plugins/jwt")
    for shown in (alice["keys"][0], bob["basic_auth"][0]["password"], jwt_config["secrets"][0]):
        assert FINGERPRINT.match(shown), shown
    assert bob["basic_auth"][0]["username"] == "bob"  # not a secret
    # Keyed: not the plain sha256 of the secret (a weak password would be guessable).
    import hashlib

    assert alice["keys"][0] != "sha256:" + hashlib.sha256(ALICE_KEY.encode()).hexdigest()[:12]


def test_writes_and_errors_never_echo_a_secret(secret_gw):
    api = AdminApi(secret_gw, ADMIN_TOKEN)
    credential = [{"username": "dave", "password": NEW_PASSWORD}]
    answers = [
        api.post("/consumers", {"name": "carol", "keys": [NEW_KEY]}),
        api.put("/consumers/dave", {"basic_auth": credential}),
        api.patch("/consumers/carol", {"basic_auth": [{**credential[0], "username": "c"}]}),
        api.post("/consumers/alice/keys", {"key": NEW_KEY + "-2"}),
        api.put("/routes/jwt-r/plugins/jwt", {"secrets": [JWT_SECRET, NEW_JWT_SECRET]}),
        # Refused ones: the error must not quote the secret either.
        api.post("/consumers", {"name": "erin", "keys": WRONG_TYPE_KEY}),
        api.post("/consumers", {"name": "frank", "basic_auth": [{"username": "f",
                                                                 "password": [LISTED_PASSWORD]}]}),
        api.post("/consumers", {"name": "gina", "keys": [ALICE_KEY]}),  # duplicate key
        api.post("/consumers/alice/keys", {"key": NEW_KEY}),  # another consumer's key
        api.put("/routes/jwt-r/plugins/jwt", {"secrets": [NEW_JWT_SECRET[:20]]}),  # too short
        api.patch("/consumers/carol", {"keys": [NEW_KEY, {"nested": NEW_KEY}]}),
        api.call("DELETE", f"/consumers/alice/keys/{ALICE_KEY}-nope"),
    ]  # fmt: skip
    statuses = [status for status, _ in answers]
    assert statuses[:5] == [201, 201, 200, 201, 200], answers[:5]
    assert all(400 <= s < 500 for s in statuses[5:]), answers[5:]
    for status, answer in answers:
        assert_no_secret(f"answer {status}", str(answer))
    assert answers[3][1] == {"fingerprint": answers[3][1]["fingerprint"]}
    # Deleting a key by the key itself: the request line audited and logged names no key.
    assert api.delete(f"/consumers/alice/keys/{NEW_KEY}-2")[0] == 204
    # The new secrets work.
    assert get(secret_gw.url("/keyed/x"), headers={"apikey": NEW_KEY}).status == 200
    assert get(secret_gw.url("/jwt/x"), headers=bearer(NEW_JWT_SECRET)).status == 200


def test_audit_log_and_gateway_log_hold_no_secret(secret_gw):
    api = AdminApi(secret_gw, ADMIN_TOKEN)
    api.post("/consumers", {"name": "henry", "keys": [NEW_KEY + "-h"]})
    api.delete("/consumers/henry")
    rows = api.audit()
    assert rows and any(r["entity_name"] == "henry" for r in rows)
    assert any(r["request"].startswith("DELETE /consumers/alice/keys/sha256:") for r in rows)
    assert_no_secret("/audit", str(rows))
    stored = wait_until(
        lambda: secret_gw.logs_query("SELECT * FROM pygate.audit_log"), 60, what="audit rows"
    )
    assert_no_secret("pygate.audit_log", str(stored))
    time.sleep(0.5)  # the log lines of the last requests
    assert_no_secret("the gateway's log", secret_gw.log_text())


def test_export_imports_again_without_losing_a_secret(secret_gw, tmp_path):
    api = AdminApi(secret_gw, ADMIN_TOKEN)
    assert authenticates(secret_gw) == {"key": 200, "basic": 200, "jwt": 200}
    res = secret_gw.cli("admin", "export")
    assert res.returncode == 0, res.stderr
    assert_no_secret("pygate admin export", res.stdout + res.stderr)
    exported = yaml.safe_load(res.stdout)
    # Import the export as it is: every secret is given by fingerprint and kept.
    path = tmp_path / "export.yaml"
    path.write_text(res.stdout)
    res = secret_gw.cli("admin", "import", str(path))
    assert res.returncode == 0, res.stderr
    assert_no_secret("pygate admin import", res.stdout + res.stderr)
    assert authenticates(secret_gw) == {"key": 200, "basic": 200, "jwt": 200}
    assert api.ok("GET", "/config?format=json") == exported

    # GET, change one thing, PUT back: the fingerprints keep their secrets.
    alice = api.ok("GET", "/consumers/alice")
    api.ok("PUT", "/consumers/alice", {**alice, "keys": [*alice["keys"], "alice-extra-key"]})
    assert authenticates(secret_gw)["key"] == 200
    assert get(secret_gw.url("/keyed/x"), headers={"apikey": "alice-extra-key"}).status == 200

    # A fingerprint this gateway has no secret for is refused, naming the field.
    for fingerprint in ("sha256:000000000000", "sha256:" + "f" * 12):
        status, answer = api.put("/consumers/alice", {"keys": [fingerprint]})
        assert status == 400, answer
        assert answer["problems"][0]["path"] == "consumers[0].keys[0]"
        assert "unknown fingerprint" in answer["problems"][0]["message"]
    assert authenticates(secret_gw)["key"] == 200

    # A key deleted by its fingerprint is gone.
    extra = api.ok("GET", "/consumers/alice")["keys"][-1]
    assert api.delete(f"/consumers/alice/keys/{extra}")[0] == 204
    assert get(secret_gw.url("/keyed/x"), headers={"apikey": "alice-extra-key"}).status == 401


def test_a_config_file_cannot_hold_a_fingerprint_as_a_secret(tmp_path, upstreams):
    cfg = simple_config(upstreams)
    cfg["consumers"] = [{"name": "zed", "keys": ["sha256:0123456789ab"]}]
    cfg["listen"] = "127.0.0.1:9"
    path = tmp_path / "gateway.yaml"
    path.write_text(yaml.safe_dump(cfg))
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2
    assert "consumers[0].keys[0]" in res.stderr and "fingerprint" in res.stderr
