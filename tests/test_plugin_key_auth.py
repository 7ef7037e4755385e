"""key-auth: 401 without a known key, the consumer it names, hidden or passed-on keys
(the session gateway's /auth and /authvis routes, support/configs.py)."""

from __future__ import annotations

from support.client import assert_json_error, get


def test_missing_key_is_401(gw):
    assert_json_error(get(gw.url("/auth/x")), 401, "unauthorized")


def test_wrong_apikey_header_is_401(gw):
    assert_json_error(get(gw.url("/auth/x"), headers={"apikey": "nope"}), 401, "unauthorized")


def test_wrong_bearer_token_is_401(gw):
    resp = get(gw.url("/auth/x"), headers={"Authorization": "Bearer nope"})
    assert_json_error(resp, 401, "unauthorized")


def test_apikey_header_authenticates_and_is_hidden(gw):
    resp = get(gw.url("/auth/x"), headers={"apikey": "alice-key-2"})
    assert resp.status == 200
    seen = resp.upstream_headers()
    assert seen.get("x-consumer-username") == "alice"
    assert "apikey" not in seen
    assert "alice-key-2" not in str(resp.json()["headers"])


def test_bearer_token_authenticates_and_is_hidden(gw):
    resp = get(gw.url("/auth/x"), headers={"Authorization": "Bearer bob-key-1"})
    assert resp.status == 200
    seen = resp.upstream_headers()
    assert seen.get("x-consumer-username") == "bob"
    assert "authorization" not in seen


def test_key_is_passed_on_when_not_hidden(gw):
    resp = get(gw.url("/authvis/x"), headers={"apikey": "bob-key-1"})
    assert resp.status == 200
    seen = resp.upstream_headers()
    assert seen.get("apikey") == "bob-key-1"
    assert seen.get("x-consumer-username") == "bob"


def test_consumer_cannot_spoof_consumer_header(gw):
    resp = get(gw.url("/auth/x"), headers={"apikey": "bob-key-1", "X-Consumer-Username": "alice"})
    assert resp.status == 200
    assert resp.upstream_headers().get("x-consumer-username") == "bob"
