"""One test per failure mode of the AI gateway, each checking the ai_calls row.

Each test has its own consumer or provider key, so limits, caches and resting keys of
one test never change another's outcome.
"""

from __future__ import annotations

import json
import math
import re
import urllib.error
import urllib.request
from dataclasses import dataclass

import openai
import pytest
from support.ai_setup import CONSUMERS, ai_row, cost, new_request_id


@dataclass
class Reply:
    status_code: int
    text: str

    def json(self) -> dict:
        return json.loads(self.text)


def post(url: str, body: dict, headers: dict[str, str]) -> Reply:
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data, {**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request) as response:
            return Reply(response.status, response.read().decode())
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode())


def client(gateway, consumer: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url("/v1"), api_key=CONSUMERS[consumer], max_retries=0)


def ask(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def estimate(text: str) -> int:
    """Four characters per token, rounded up: the documented estimate."""
    return math.ceil(len(text) / 4)


def test_429_falls_back_to_the_next_model(ai_gw, emulators):
    emulators.fail("openai", "429", key="sk-flaky-1")
    rid = new_request_id()
    raw = client(ai_gw, "alice").chat.completions.with_raw_response.create(
        model="flaky-gpt", messages=ask("fallback please now"), extra_headers={"X-Request-Id": rid}
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "echo: fallback please now"
    assert raw.headers["X-Pygate-Fallback"] == "claude"
    row = ai_row(ai_gw, rid)
    assert (row["provider"], row["fallback_used"], row["attempts"]) == ("anthropic", "claude", 2)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 4)
    assert row["cost_usd"] == pytest.approx(cost("anthropic/claude-3-5-haiku", 3, 4))
    assert row["status"] == 200 and row["alias"] == "flaky-gpt"


def test_key_pool_rotates_on_429(ai_gw, emulators):
    emulators.fail("openai", "429", key="sk-pool-a")
    before = len(emulators.calls())
    rids = [new_request_id(), new_request_id()]
    for n, rid in enumerate(rids):
        answer = client(ai_gw, "alice").chat.completions.create(
            model="pooled", messages=ask(f"rotate keys {n}"), extra_headers={"X-Request-Id": rid}
        )
        assert answer.choices[0].message.content == f"echo: rotate keys {n}"
    keys = [c["key"] for c in emulators.calls()[before:]]
    # Round robin: one of the two calls met key a first, got 429 and moved to key b.
    assert len(keys) == 3 and "sk-pool-a,sk-pool-b" in ",".join(keys)
    rows = [ai_row(ai_gw, rid) for rid in rids]
    assert sorted(r["attempts"] for r in rows) == [1, 2]
    for row in rows:
        assert (row["provider"], row["fallback_used"], row["status"]) == ("pool", "", 200)
        assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 4)
        assert row["cost_usd"] == pytest.approx(cost("pool/gpt-4o-mini", 3, 4))


def test_5xx_mid_stream_is_not_retried(ai_gw, emulators):
    emulators.fail("anthropic", "midstream")
    before = len(emulators.calls())
    rid, prompt = new_request_id(), "tell me a long story"
    received = ""
    stream = client(ai_gw, "frank").chat.completions.create(
        model="claude", messages=ask(prompt), stream=True, extra_headers={"X-Request-Id": rid}
    )
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert "stream broke off" in str(caught.value)
    assert received == "echo: tell"  # what the provider sent before failing
    assert len(emulators.calls()) == before + 1  # the caller had bytes: no retry
    row = ai_row(ai_gw, rid)
    assert (row["status"], row["streamed"], row["tokens_estimated"]) == (502, True, True)
    assert row["error"].startswith("stream_interrupted")
    tokens = (estimate(prompt), estimate(received))
    assert (row["prompt_tokens"], row["completion_tokens"]) == tokens
    assert row["cost_usd"] == pytest.approx(cost("anthropic/claude-3-5-haiku", *tokens))


def test_5xx_before_the_first_byte_is_retried(ai_gw, emulators):
    emulators.fail("gemini", "500")
    rid = new_request_id()
    chunks = client(ai_gw, "frank").chat.completions.create(
        model="gemini/gemini-1.5-flash",
        messages=ask("retry me"),
        stream=True,
        extra_headers={"X-Request-Id": rid},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: retry me"
    row = ai_row(ai_gw, rid)
    assert (row["attempts"], row["status"], row["tokens_estimated"]) == (2, 200, False)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2, 3)


def test_timeout_falls_back(ai_gw, emulators):
    emulators.fail("openai", "hang", key="sk-slow-1")
    rid = new_request_id()
    answer = client(ai_gw, "frank").chat.completions.create(
        model="slowgpt", messages=ask("are you there"), extra_headers={"X-Request-Id": rid}
    )
    assert answer.choices[0].message.content == "echo: are you there"
    row = ai_row(ai_gw, rid)
    assert (row["provider"], row["fallback_used"]) == ("gemini", "gemini/gemini-1.5-flash")
    assert row["latency_ms"] >= 1000  # the slow provider's timeout: 1s
    assert (row["prompt_tokens"], row["completion_tokens"]) == (3, 4)
    assert row["cost_usd"] == pytest.approx(cost("gemini/gemini-1.5-flash", 3, 4))


def test_stream_that_goes_quiet_is_cut_off(ai_gw, emulators):
    emulators.fail("openai", "stall", key="sk-slow-1")
    rid, received = new_request_id(), ""
    stream = client(ai_gw, "frank").chat.completions.create(
        model="slowgpt",
        messages=ask("stall here"),
        stream=True,
        extra_headers={"X-Request-Id": rid},
    )
    with pytest.raises(openai.APIError):
        for chunk in stream:
            received += "".join(c.delta.content or "" for c in chunk.choices)
    assert received == "echo: stall"
    row = ai_row(ai_gw, rid)
    assert (row["status"], row["provider"], row["fallback_used"]) == (502, "slow", "")
    assert row["latency_ms"] >= 1000  # stream_idle_timeout: 1s
    # No usage came: gpt-4o-mini's tokenizer (o200k_base, tiktoken's counts) counts the
    # prompt (3 + 3 + "user" 1 + "stall here" 2) and what was streamed ("echo: stall" 3).
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 3)
    assert row["tokens_estimated"] is False


def test_token_budget_exhausted(ai_gw):
    api = client(ai_gw, "bob")  # 20 tokens per minute
    first, refused = new_request_id(), new_request_id()
    words = "one two three four five six seven eight nine ten eleven twelve"
    api.chat.completions.create(
        model="openai/gpt-4o-mini", messages=ask(words), extra_headers={"X-Request-Id": first}
    )
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(
            model="openai/gpt-4o-mini",
            messages=ask("more"),
            extra_headers={"X-Request-Id": refused},
        )
    response = caught.value.response
    assert response.json()["error"]["kind"] == "token_limit_exceeded"
    assert "consumer 'bob'" in response.json()["error"]["message"]
    assert response.headers["X-RateLimit-Limit-Tokens"] == "20"
    assert response.headers["X-RateLimit-Remaining-Tokens"] == "0"
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    used = ai_row(ai_gw, first)
    assert (used["prompt_tokens"], used["completion_tokens"]) == (12, 13)
    assert used["cost_usd"] == pytest.approx(cost("openai/gpt-4o-mini", 12, 13))
    row = ai_row(ai_gw, refused)
    assert (row["status"], row["attempts"], row["prompt_tokens"], row["cost_usd"]) == (
        429,
        0,
        0,
        0,
    )


def test_cost_budget_exhausted(ai_gw):
    api = client(ai_gw, "carol")  # $0.001 per day; one call costs $0.00285
    first, refused = new_request_id(), new_request_id()
    api.chat.completions.create(
        model="gpt", messages=ask("spend it all"), extra_headers={"X-Request-Id": first}
    )
    with pytest.raises(openai.RateLimitError) as caught:
        api.chat.completions.create(
            model="gpt", messages=ask("once more"), extra_headers={"X-Request-Id": refused}
        )
    response = caught.value.response
    assert response.json()["error"]["kind"] == "budget_exceeded"
    assert response.headers["X-Budget-Remaining-Day-USD"] == "0.000000"
    assert ai_row(ai_gw, first)["cost_usd"] == pytest.approx(cost("openai/gpt-4o-mini", 3, 4))
    assert ai_row(ai_gw, refused)["status"] == 429


def test_bad_template_variables(ai_gw):
    url, headers = ai_gw.url("/ai/sentiment"), {"apikey": CONSUMERS["alice"]}
    rid = new_request_id()
    bad = post(url, {"text": "x", "mood": 1}, {**headers, "X-Request-Id": rid})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["kind"] == "bad_template_variables"
    assert error["message"] == "missing variables: scale; unexpected variables: mood"
    wrong = post(url, {"text": "x", "scale": "ten"}, headers)
    assert wrong.status_code == 400 and "scale must be a integer" in wrong.text
    row = ai_row(ai_gw, rid)
    assert (row["status"], row["endpoint"], row["attempts"]) == (400, "template:sentiment@2", 0)
    assert (row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]) == (0, 0, 0)

    good_id = new_request_id()
    good = post(
        url,
        {"text": "great day", "scale": 5},
        headers={**headers, "X-Request-Id": good_id},
    )
    assert good.status_code == 200
    assert good.json()["output"] == "echo: Rate great day from 1 to 5"
    assert good.json()["version"] == 2
    row = ai_row(ai_gw, good_id)
    # system "You rate sentiment." (3 words) + "Rate great day from 1 to 5" (7)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (10, 8)
    assert row["cost_usd"] == pytest.approx(cost("openai/gpt-4o-mini", 10, 8))


def test_exact_match_cache(ai_gw, emulators):
    api = client(ai_gw, "erin")
    before = len(emulators.calls())
    rids = [new_request_id(), new_request_id()]
    answers = [
        api.chat.completions.with_raw_response.create(
            model="openai/gpt-4o-mini", messages=ask("cache me"), extra_headers={"X-Request-Id": r}
        )
        for r in rids
    ]
    assert answers[0].parse().choices[0].message.content == "echo: cache me"
    assert answers[1].parse().choices[0].message.content == "echo: cache me"
    assert answers[1].headers["X-Pygate-Cache"] == "hit"
    assert len(emulators.calls()) == before + 1
    miss, hit = (ai_row(ai_gw, r) for r in rids)
    assert (miss["cache_hit"], hit["cache_hit"]) == (False, True)
    assert (hit["prompt_tokens"], hit["completion_tokens"], hit["cost_usd"]) == (2, 3, 0)
    assert miss["cost_usd"] == pytest.approx(cost("openai/gpt-4o-mini", 2, 3))
    # A streamed call is never answered from the cache.
    list(
        api.chat.completions.create(
            model="openai/gpt-4o-mini", messages=ask("cache me"), stream=True
        )
    )
    assert len(emulators.calls()) == before + 2


def test_internal_listener_refuses_direct_calls(ai_gw):
    port = re.search(r"AI gateway on internal listener [\d.]+:(\d+)", ai_gw.log_text()).group(1)
    direct = post(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        {"model": "gpt", "messages": ask("hi")},
        headers={"X-Consumer-Username": "alice", "X-Request-Id": "forged"},
    )
    assert direct.status_code == 403
