"""Mistral adapter on recorded payloads: OpenAI's wire format minus the fields Mistral
refuses; usage arrives in the last chunk without being asked.

Calls the adapter directly (no network, no gateway).
"""

from __future__ import annotations

import orjson

from pygate.ai.providers import ADAPTERS
from pygate.config.ai_schema import Provider

ADAPTER = ADAPTERS["mistral"]
PROVIDER = Provider(name="mis", kind="mistral", base_url="https://api.mistral.test")


def test_chat_request_drops_openai_only_fields_and_never_sends_stream_options():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_usage": True},
        "user": "u",
        "logprobs": True,
        "top_logprobs": 2,
        "n": 1,
        "logit_bias": {"1": 2},
        "temperature": 0.3,
    }
    request = ADAPTER.chat_request(PROVIDER, "mistral-small", body, "m-key", stream=True)
    assert request.url == "https://api.mistral.test/v1/chat/completions"
    assert request.headers == {"Content-Type": "application/json", "Authorization": "Bearer m-key"}
    assert request.json == {
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.3,
        "model": "mistral-small",
        "stream": True,
    }


def test_stream_usage_from_the_last_chunk_and_embeddings():
    translator = ADAPTER.stream_translator("small")
    recorded = [
        {
            "id": "m1",
            "model": "mistral-small-latest",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Bon"}}],
        },
        {
            "id": "m1",
            "model": "mistral-small-latest",
            "choices": [{"index": 0, "delta": {"content": "jour"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 4, "completion_tokens": 2, "total_tokens": 6},
        },
    ]
    chunks = [c for data in recorded for c in translator.feed("", orjson.dumps(data).decode())]
    assert [c["choices"][0]["delta"].get("content") for c in chunks] == ["Bon", "jour"]
    assert chunks[1]["choices"][0]["finish_reason"] == "stop"
    assert {c["model"] for c in chunks} == {"small"}
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (4, 2)
    request = ADAPTER.embeddings_request(PROVIDER, "mistral-embed", {"input": ["x"]}, "m-key")
    assert request.url == "https://api.mistral.test/v1/embeddings"
    assert request.json == {"input": ["x"], "model": "mistral-embed"}
