"""Caller text the tokenizer cannot count cheaply: long runs without a break.

The gateway counts tokens of caller-controlled text (the prompt, before a call under a
tokens-per-minute limit; the prompt and the answer after a call without usage). A body of
megabytes of one letter, of spaces or of symbols is one pre-tokenizer piece, whose BPE
work and regex backtracking grow with its length: the counter declines such a text (over
16 KiB of one run), the call is estimated and marked, and the gateway keeps answering
others at once. No timing is asserted; pytest-timeout bounds the test, and the other
caller's call is made while the padded ones are in flight.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import openai
import pytest
from support.ai_setup import ai_row, new_request_id
from support.fixed_completion import ANSWER, FixedCompletion
from support.gateway import Gateway, running

KEYS = {"mallory": "tok-mallory-key", "alice": "tok-alice-key"}
RUN = 1024 * 1024  # 1 Mi characters of one run: 64 times the counter's bound (in bytes)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory) -> Iterator[Gateway]:
    provider = FixedCompletion().start()
    config = {
        "workers": 1,
        "consumers": [{"name": n, "keys": [k]} for n, k in KEYS.items()],
        "ai": {
            "providers": [{"name": "fixed", "kind": "openai", "base_url": provider.base_url,
                           "keys": ["sk-fixed-1"], "retries": 0, "timeout": "60s"}],
            "limits": [{"consumer": "mallory", "tokens_per_minute": 100_000_000}],
        },
    }  # fmt: skip
    with running(Gateway(tmp_path_factory.mktemp("gw-sec-tokens"), config)) as gw:
        yield gw
    provider.stop()


def client(gateway: Gateway, consumer: str) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url("/v1"), api_key=KEYS[consumer], max_retries=0, timeout=120
    )


@pytest.mark.parametrize("padding", ["a", " ", "!", "\u00e9", "\n"])
def test_a_padded_prompt_is_estimated_and_others_are_served(gateway, padding):
    rid, results = new_request_id(), {}

    def padded() -> None:
        answer = client(gateway, "mallory").chat.completions.create(
            model="fixed/gpt-4o-mini",
            messages=[{"role": "user", "content": "x" + padding * RUN + "y"}],
            extra_headers={"X-Request-Id": rid},
        )
        results["padded"] = answer.choices[0].message.content

    attacker = threading.Thread(target=padded)
    attacker.start()
    other = new_request_id()
    answer = client(gateway, "alice").chat.completions.create(
        model="fixed/gpt-4o-mini",
        messages=[{"role": "user", "content": "What is the capital of France?"}],
        extra_headers={"X-Request-Id": other},
    )
    assert answer.choices[0].message.content == ANSWER
    attacker.join(120)
    assert results.get("padded") == ANSWER
    row = ai_row(gateway, rid)
    assert row["status"] == 200 and row["tokens_estimated"] is True
    assert row["prompt_tokens"] >= RUN // 4  # the estimate (4 characters a token), not 0
    assert ai_row(gateway, other)["tokens_estimated"] is False
