"""A provider refusing the gateway's key (401/403, Gemini's API_KEY_INVALID) is the
gateway's problem, not the caller's: a 502 that says so, that SDKs do not retry, that
is counted; a refused key leaves the rotation for a while and the pool's other keys
answer. The gateway's own 429s always say when to come back (Retry-After).

The emulators refuse every key starting with `revoked-` or `forbidden-`.
"""

from __future__ import annotations

import anthropic
import httpx2
import openai
import pytest
from support.ai_setup import CONSUMERS, ai_row, new_request_id

ASK = [{"role": "user", "content": "who am I"}]


class CountingClient:
    """An openai SDK client that retries a lot (a retry loop would show) and counts
    the HTTP requests it really sends."""

    def __init__(self, gateway, consumer: str = "frank", max_retries: int = 3) -> None:
        self.sent = 0

        def count(request: httpx2.Request) -> None:
            self.sent += 1

        http = httpx2.Client(event_hooks={"request": [count]}, timeout=30)
        self.api = openai.OpenAI(
            base_url=gateway.url("/v1"),
            api_key=CONSUMERS[consumer],
            max_retries=max_retries,
            http_client=http,
        )


def keys_seen(emulators, key: str) -> int:
    return sum(1 for call in emulators.calls() if call["key"] == key)


@pytest.mark.parametrize("stream", [False, True])
def test_a_refused_key_is_a_502_that_names_credentials(ai_gw, emulators, stream):
    model = "locked/gpt-4o-mini"
    for _attempt in range(2):  # the second call meets the key resting: still 502, not 429
        client, rid = CountingClient(ai_gw), new_request_id()
        with pytest.raises(openai.APIStatusError) as caught:
            answer = client.api.chat.completions.create(
                model=model, messages=ASK, stream=stream, extra_headers={"X-Request-Id": rid}
            )
            list(answer) if stream else None
        response = caught.value.response
        assert response.status_code == 502, response.text
        assert client.sent == 1, "the SDK retried the gateway's auth failure"
        error = response.json()["error"]
        assert error["kind"] == "provider_auth_failed"
        assert error["type"] == "provider_auth_failed" and error["param"] is None
        assert "refused the gateway's credentials" in error["message"]
        assert "locked" in error["message"]  # which provider: the operator's next step
        assert "revoked-locked-1" not in response.text
        assert "Retry-After" not in response.headers
        row = ai_row(ai_gw, rid)
        assert (row["status"], row["provider"]) == (502, "locked")
        assert row["error"].startswith("provider_auth_failed: ")
        assert "revoked-locked-1" not in row["error"]
    # The refused key rests (key_cooldown: 30s): the provider was asked once, not per call.
    assert keys_seen(emulators, "revoked-locked-1") == 1


def test_a_mixed_pool_serves_from_the_good_key(ai_gw, emulators):
    client = CountingClient(ai_gw)
    rids = [new_request_id() for _ in range(4)]
    for n, rid in enumerate(rids):
        answer = client.api.chat.completions.create(
            model="halfpool/gpt-4o-mini",
            messages=[{"role": "user", "content": f"pool {n}"}],
            extra_headers={"X-Request-Id": rid},
        )
        assert answer.choices[0].message.content == f"echo: pool {n}"
    assert client.sent == 4
    # Round robin starts on the bad key: refused once, then out of the rotation.
    assert keys_seen(emulators, "revoked-half-1") == 1
    assert keys_seen(emulators, "sk-half-good") == 4
    rows = [ai_row(ai_gw, rid) for rid in rids]
    assert [r["status"] for r in rows] == [200] * 4
    assert sorted(r["attempts"] for r in rows) == [1, 1, 1, 2]


def test_a_refused_provider_falls_back(ai_gw):
    rid = new_request_id()
    raw = CountingClient(ai_gw).api.chat.completions.with_raw_response.create(
        model="locked-gpt", messages=ASK, extra_headers={"X-Request-Id": rid}
    )
    assert raw.parse().choices[0].message.content == "echo: who am I"
    assert raw.headers["X-Pygate-Fallback"] == "claude"
    row = ai_row(ai_gw, rid)
    assert (row["provider"], row["fallback_used"], row["status"]) == ("anthropic", "claude", 200)


def test_anthropic_403_through_the_anthropic_sdk(ai_gw):
    sent = []
    http = httpx2.Client(event_hooks={"request": [sent.append]}, timeout=30)
    api = anthropic.Anthropic(
        base_url=ai_gw.url(""), api_key=CONSUMERS["frank"], max_retries=3, http_client=http
    )
    with pytest.raises(anthropic.APIStatusError) as caught:
        api.messages.create(model="locked-ant/claude-3-5-haiku", max_tokens=10, messages=ASK)
    assert caught.value.status_code == 502 and len(sent) == 1
    body = caught.value.response.json()
    assert body["type"] == "error" and body["error"]["type"] == "api_error"
    assert "refused the gateway's credentials (403)" in body["error"]["message"]
    assert "forbidden-ant-1" not in caught.value.response.text


def test_gemini_api_key_invalid_is_counted(ai_gw):
    before = ai_gw.status().get("ai_provider_auth_failures", 0)
    rid = new_request_id()
    with pytest.raises(openai.APIStatusError) as caught:
        CountingClient(ai_gw).api.chat.completions.create(
            model="locked-gem/gemini-1.5-flash", messages=ASK, extra_headers={"X-Request-Id": rid}
        )
    # Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
    assert caught.value.status_code == 502
    assert caught.value.response.json()["error"]["kind"] == "provider_auth_failed"
    assert ai_row(ai_gw, rid)["error"].startswith("provider_auth_failed")
    assert ai_gw.status()["ai_provider_auth_failures"] == before + 1
    metrics = ai_gw.admin_text("/metrics")
    assert "# TYPE pygate_ai_provider_auth_failures_total counter" in metrics
    assert f"pygate_ai_provider_auth_failures_total {before + 1}" in metrics


def test_the_gateways_429s_carry_retry_after(ai_gw, emulators):
    emulators.fail("openai", "429", key="sk-tight-1", retry_after="20")
    api = CountingClient(ai_gw, max_retries=0).api
    for what in ("the provider's 429", "every key resting"):
        with pytest.raises(openai.RateLimitError) as caught:
            api.chat.completions.create(model="tight/gpt-4o-mini", messages=ASK)
        response = caught.value.response
        assert response.json()["error"]["kind"] == "provider_rate_limited", what
        assert 1 <= int(response.headers["Retry-After"]) <= 20, what
    assert keys_seen(emulators, "sk-tight-1") == 1
