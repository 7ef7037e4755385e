"""key-auth (401) and rate-limit (429 with Retry-After and X-RateLimit-* headers)."""

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


def _ratelimit_headers(resp) -> tuple[int, int, int]:
    return (
        int(resp.header("x-ratelimit-limit")),
        int(resp.header("x-ratelimit-remaining")),
        int(resp.header("x-ratelimit-reset")),
    )


def test_rate_limit_by_consumer(gw):
    # rate 2 per 60s, burst 2: two pass, the third is refused; another consumer is not.
    key = {"apikey": "alice-key-1"}
    first = get(gw.url("/limited/a"), headers=key)
    second = get(gw.url("/limited/b"), headers=key)
    third = get(gw.url("/limited/c"), headers=key)

    assert first.status == 200 and second.status == 200
    limit, remaining, reset = _ratelimit_headers(first)
    assert (limit, remaining) == (2, 1)
    assert 0 <= reset <= 60
    limit, remaining, reset = _ratelimit_headers(second)
    assert (limit, remaining) == (2, 0)
    assert 0 < reset <= 60

    assert_json_error(third, 429, "rate_limited")
    retry_after = int(third.header("retry-after"))
    assert 1 <= retry_after <= 60
    limit, remaining, _ = _ratelimit_headers(third)
    assert (limit, remaining) == (2, 0)

    # The bucket is per consumer: alice's other key shares it, bob has his own.
    assert get(gw.url("/limited/d"), headers={"apikey": "alice-key-2"}).status == 429
    assert get(gw.url("/limited/e"), headers={"apikey": "bob-key-1"}).status == 200


def test_auth_runs_before_rate_limit(gw):
    # Unauthenticated requests are refused with 401 and do not reach the limiter.
    assert_json_error(get(gw.url("/limited/x")), 401, "unauthorized")


def test_rate_limit_by_ip(gw):
    statuses = [get(gw.url(f"/limited-ip/{i}")).status for i in range(4)]
    assert statuses == [200, 200, 200, 429]
