"""Token counts when the provider sends no usage, through the real gateway.

An OpenAI-format provider (support/fixed_completion.py) answers a fixed text and never
reports usage, streamed or not. For OpenAI models the gateway counts with the model's own
tokenizer (the core's tiktoken ranks) and the pygate.ai_calls row holds the exact counts
with tokens_estimated false; for a model with no known tokenizer it estimates and says so.
The same count decides the tokens-per-minute check before a call.

The expected counts were computed apart from pygate, with OpenAI's `tiktoken` 0.14.0
(Python) and the cookbook's chat rule (see core-rs/src/tokens/tests.rs):
  prompt: 3 + (3 + "system" + "You answer in one sentence.") + (3 + "user" + "What is the
  capital of France?") = 24 in o200k_base and in cl100k_base;
  completion: ANSWER is 20 tokens in o200k_base, 21 in cl100k_base.
"""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest
from support.ai_setup import ai_row, new_request_id
from support.fixed_completion import ANSWER, FixedCompletion
from support.gateway import Gateway, running

PROMPT = [
    {"role": "system", "content": "You answer in one sentence."},
    {"role": "user", "content": "What is the capital of France?"},
]
KEYS = {"alice": "tok-alice-key", "tess": "tok-tess-key", "tina": "tok-tina-key"}
PRICE = {"model": "fixed/gpt-4o-mini", "input_per_1m": 150.0, "output_per_1m": 600.0}


@pytest.fixture(scope="module")
def provider() -> Iterator[FixedCompletion]:
    server = FixedCompletion().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gateway(provider: FixedCompletion, tmp_path_factory) -> Iterator[Gateway]:
    config = {
        "workers": 1,
        "consumers": [{"name": n, "keys": [k]} for n, k in KEYS.items()],
        "ai": {
            "providers": [
                {
                    "name": "fixed",
                    "kind": "openai",
                    "base_url": provider.base_url,
                    "keys": ["sk-fixed-1"],
                    "retries": 0,
                },
                {
                    "name": "local",
                    "kind": "openai_compatible",
                    "base_url": provider.base_url,
                    "keys": [],
                    "retries": 0,
                },
            ],  # fmt: skip
            "prices": [PRICE],
            "limits": [
                {"consumer": "tess", "tokens_per_minute": 23},  # one token short of PROMPT
                {"consumer": "tina", "tokens_per_minute": 24},  # exactly PROMPT
            ],
        },
    }
    with running(Gateway(tmp_path_factory.mktemp("gw-tokens"), config)) as gw:
        yield gw


def client(gateway: Gateway, consumer: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url("/v1"), api_key=KEYS[consumer], max_retries=0, timeout=30
    )


def chat(api: openai.OpenAI, model: str, stream: bool, rid: str) -> str:
    headers = {"X-Request-Id": rid}
    if not stream:
        answer = api.chat.completions.create(model=model, messages=PROMPT, extra_headers=headers)
        assert answer.usage is None  # the provider's answer had none, and none was made up
        return answer.choices[0].message.content
    chunks = api.chat.completions.create(
        model=model,
        messages=PROMPT,
        stream=True,
        stream_options={"include_usage": True},
        extra_headers=headers,
    )
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize(
    "model,prompt,completion",
    [("fixed/gpt-4o-mini", 24, 20), ("fixed/gpt-4", 24, 21)],
)
def test_no_usage_is_counted_with_the_models_tokenizer(gateway, model, prompt, completion, stream):
    rid = new_request_id()
    assert chat(client(gateway), model, stream, rid) == ANSWER
    row = ai_row(gateway, rid)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["tokens_estimated"] is False
    assert (row["status"], row["streamed"]) == (200, stream)
    if model == PRICE["model"]:
        expected = (prompt * PRICE["input_per_1m"] + completion * PRICE["output_per_1m"]) / 1e6
        assert row["cost_usd"] == pytest.approx(expected)


@pytest.mark.parametrize("stream", [True, False])
def test_a_model_with_no_known_tokenizer_is_estimated(gateway, stream):
    rid = new_request_id()
    assert chat(client(gateway), "local/llama-3-8b", stream, rid) == ANSWER
    row = ai_row(gateway, rid)
    # Four characters a token: 57 characters of prompt text, 89 of answer.
    assert (row["prompt_tokens"], row["completion_tokens"]) == (15, 23)
    assert row["tokens_estimated"] is True


def test_embeddings_without_usage_are_counted(gateway):
    rid = new_request_id()
    client(gateway).embeddings.create(
        model="fixed/text-embedding-3-small",
        input=["hello world", "tiktoken is great!"],
        extra_headers={"X-Request-Id": rid},
    )
    row = ai_row(gateway, rid)
    assert (row["prompt_tokens"], row["completion_tokens"]) == (2 + 6, 0)
    assert row["tokens_estimated"] is False


def test_the_limit_check_counts_the_prompt_before_the_call(gateway, provider):
    # 23 tokens a minute: the 24-token prompt can never fit (the estimate, 15, would have
    # let it through). Refused before the provider is asked, and not worth a retry.
    before = len(provider.calls)
    rid = new_request_id()
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client(gateway, "tess"), "fixed/gpt-4o-mini", False, rid)
    response = caught.value.response
    error = response.json()["error"]
    assert error["kind"] == "token_limit_exceeded"
    assert "prompt's 24 tokens are over the token limit of consumer 'tess'" in error["message"]
    assert response.headers["x-should-retry"] == "false"
    assert len(provider.calls) == before
    assert ai_row(gateway, rid)["status"] == 429
    # 24 a minute: exactly fits, once; the call is then charged 24 + 20 and the next waits.
    api = client(gateway, "tina")
    assert chat(api, "fixed/gpt-4o-mini", True, new_request_id()) == ANSWER
    with pytest.raises(openai.RateLimitError) as caught:
        chat(api, "fixed/gpt-4o-mini", True, new_request_id())
    assert caught.value.response.headers["X-RateLimit-Remaining-Tokens"] == "0"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 61
