"""OpenAI adapter on recorded payloads: the unified format passes through, with the
model set, bearer auth, and usage forced on streams.

Calls the adapter directly (no network, no gateway); the emulator tests in
tests/test_ai_gateway.py cover the same adapter end to end.
"""

from __future__ import annotations

import orjson

from pygate.ai.providers import ADAPTERS
from pygate.ai.providers.base import AUTH_REFUSED, FATAL, RATE_LIMITED, RETRYABLE, StreamError
from pygate.config.ai_schema import Provider

ADAPTER = ADAPTERS["openai"]
PROVIDER = Provider(name="oai", kind="openai", base_url="https://api.openai.test/")


def test_chat_request_sets_model_bearer_and_forces_usage_on_streams():
    body = {
        "model": "fast",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_obfuscation": False},
        "user": "u-1",
        "temperature": 0,
    }
    request = ADAPTER.chat_request(PROVIDER, "gpt-4o-mini", body, "sk-1", stream=True)
    assert request.url == "https://api.openai.test/v1/chat/completions"
    assert request.headers == {"Content-Type": "application/json", "Authorization": "Bearer sk-1"}
    assert request.json == {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": "hi"}],
        "stream_options": {"include_obfuscation": False, "include_usage": True},
        "user": "u-1",
        "temperature": 0,
        "stream": True,
    }
    assert body["model"] == "fast", "the caller's body is not changed"


def test_non_stream_request_drops_stream_options():
    body = {"messages": [], "stream_options": {"include_usage": True}}
    request = ADAPTER.chat_request(PROVIDER, "gpt-4o", body, "sk-1", stream=False)
    assert request.json == {"messages": [], "model": "gpt-4o", "stream": False}


def test_chat_response_keeps_the_answer_and_names_the_callers_model():
    recorded = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "gpt-4o-mini-2024-07-18",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    answer = ADAPTER.chat_response(orjson.loads(orjson.dumps(recorded)), "fast")
    assert answer == {**recorded, "model": "fast"}


def test_stream_chunks_get_one_id_and_the_callers_model_and_usage_is_kept():
    translator = ADAPTER.stream_translator("fast")
    recorded = [
        {
            "id": "x1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "He"}}],
        },
        {
            "id": "x1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [
                {
                    "index": 0,
                    "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q":1}'}}]},
                }
            ],
        },
        {
            "id": "x1",
            "object": "chat.completion.chunk",
            "model": "gpt-4o",
            "choices": [],
            "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
        },
    ]
    chunks = []
    for data in recorded:
        chunks.extend(translator.feed("", orjson.dumps(data).decode()))
    assert translator.feed("", "[DONE]") == []
    assert len(chunks) == 3
    assert {c["id"] for c in chunks} == {translator.id}
    assert {c["model"] for c in chunks} == {"fast"}
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": "He"}
    assert chunks[2]["usage"]["total_tokens"] == 13
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (9, 4)
    assert translator.text_chars == len("He") + len('{"q":1}')


def test_stream_error_chunk_raises():
    translator = ADAPTER.stream_translator("fast")
    try:
        translator.feed("", '{"error": {"message": "server had an error"}}')
    except StreamError as exc:
        assert str(exc) == "server had an error"
    else:
        raise AssertionError("an error chunk must raise StreamError")


def test_embeddings_request_and_response():
    request = ADAPTER.embeddings_request(PROVIDER, "text-embedding-3-small", {"input": ["a"]}, "k")
    assert request.url == "https://api.openai.test/v1/embeddings"
    assert request.headers == {"Content-Type": "application/json", "Authorization": "Bearer k"}
    assert request.json == {"input": ["a"], "model": "text-embedding-3-small"}
    recorded = {
        "object": "list",
        "model": "text-embedding-3-small-v2",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -1.0]}],
        "usage": {"prompt_tokens": 1, "total_tokens": 1},
    }
    answer = ADAPTER.embeddings_response(dict(recorded), "embed")
    assert answer == {**recorded, "model": "embed"}


def test_quota_error_rotates_like_a_429_and_statuses_are_classified():
    quota = {"error": {"code": "insufficient_quota", "message": "You exceeded your quota"}}
    assert ADAPTER.classify(400, quota) == RATE_LIMITED
    assert ADAPTER.classify(429, {}) == RATE_LIMITED
    assert ADAPTER.classify(403, {}) == AUTH_REFUSED
    assert ADAPTER.classify(503, {}) == RETRYABLE
    assert ADAPTER.classify(408, {}) == RETRYABLE
    assert ADAPTER.classify(400, {"error": {"message": "bad"}}) == FATAL
    assert ADAPTER.error_message(quota) == "You exceeded your quota"
    assert ADAPTER.error_message({"error": "plain"}) == "plain"
