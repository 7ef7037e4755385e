"""OpenAI-compatible adapter (vLLM, Ollama, LM Studio) on recorded payloads: OpenAI's
paths and format; a server without authentication gets no Authorization header.

Calls the adapter directly (no network, no gateway).
"""

from __future__ import annotations

from pygate.ai.providers import ADAPTERS
from pygate.config.ai_schema import Provider
from pygate.config.providers import BY_KIND

ADAPTER = ADAPTERS["openai_compatible"]
PROVIDER = Provider(name="local", kind="openai_compatible", base_url="http://127.0.0.1:11434")


def test_keyless_server_gets_no_authorization_header():
    assert BY_KIND["openai_compatible"].needs_keys is False
    body = {"messages": [{"role": "user", "content": "hi"}]}
    request = ADAPTER.chat_request(PROVIDER, "llama3", body, "", stream=False)
    assert request.url == "http://127.0.0.1:11434/v1/chat/completions"
    assert request.headers == {"Content-Type": "application/json"}
    assert request.json == {
        "messages": [{"role": "user", "content": "hi"}],
        "model": "llama3",
        "stream": False,
    }


def test_with_a_key_it_authenticates_like_openai_and_asks_for_stream_usage():
    body = {"messages": []}
    request = ADAPTER.chat_request(PROVIDER, "llama3", body, "tok", stream=True)
    assert request.headers == {"Content-Type": "application/json", "Authorization": "Bearer tok"}
    assert request.json["stream_options"] == {"include_usage": True}
    recorded = {
        "id": "c",
        "object": "chat.completion",
        "model": "llama3:8b",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}
        ],
    }
    assert ADAPTER.chat_response(dict(recorded), "local-llm") == {**recorded, "model": "local-llm"}
