"""Azure OpenAI adapter on recorded payloads: OpenAI's format, addressed by deployment
and api-version, authenticated with `api-key`.

Calls the adapter directly (no network, no gateway).
"""

from __future__ import annotations

import orjson

from pygate.ai.providers import ADAPTERS
from pygate.config.ai_schema import Provider
from pygate.config.providers import BY_KIND

ADAPTER = ADAPTERS["azure"]


def _provider(api_version: str | None = None) -> Provider:
    return Provider(
        name="az", kind="azure", base_url="https://res.openai.azure.test/", api_version=api_version
    )


def test_chat_request_addresses_the_deployment_with_the_declared_default_version():
    body = {"messages": [{"role": "user", "content": "hi"}]}
    request = ADAPTER.chat_request(_provider(), "my gpt/4o", body, "az-key", stream=True)
    assert BY_KIND["azure"].default_api_version == "2024-10-21"
    assert request.url == (
        "https://res.openai.azure.test/openai/deployments/my%20gpt%2F4o/chat/completions"
        "?api-version=2024-10-21"
    )
    assert request.headers == {"Content-Type": "application/json", "api-key": "az-key"}
    assert request.json == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "my gpt/4o",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_configured_api_version_and_embeddings_path():
    request = ADAPTER.embeddings_request(
        _provider("2025-01-01-preview"), "emb", {"input": "a"}, "k"
    )
    assert request.url == (
        "https://res.openai.azure.test/openai/deployments/emb/embeddings"
        "?api-version=2025-01-01-preview"
    )
    assert request.headers == {"Content-Type": "application/json", "api-key": "k"}
    assert request.json == {"input": "a", "model": "emb"}


def test_responses_and_stream_are_openai_shaped():
    recorded = {
        "id": "chatcmpl-az",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 1, "total_tokens": 3},
    }
    assert ADAPTER.chat_response(dict(recorded), "alias") == {**recorded, "model": "alias"}
    translator = ADAPTER.stream_translator("alias")
    # Azure sends a first chunk with prompt_filter_results and no choices.
    first = {"id": "", "object": "", "model": "", "choices": [], "prompt_filter_results": []}
    chunks = translator.feed("", orjson.dumps(first).decode())
    assert chunks[0]["model"] == "alias" and chunks[0]["choices"] == []
    last = {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
    translator.feed("", orjson.dumps(last).decode())
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (3, 2)
