"""Gemini adapter on recorded payloads: OpenAI chat in, generateContent out, and back;
streamGenerateContent SSE chunks, batchEmbedContents, and Google's bad-key answer.

Calls the adapter directly (no network, no gateway); the emulator tests in
tests/test_ai_gateway.py cover the same adapter end to end.
"""

from __future__ import annotations

import orjson

from pygate.ai.providers import ADAPTERS
from pygate.ai.providers.base import AUTH_REFUSED, FATAL, StreamError
from pygate.config.ai_schema import Provider

ADAPTER = ADAPTERS["gemini"]
PROVIDER = Provider(name="g", kind="gemini", base_url="https://generativelanguage.test")


def test_chat_request_builds_contents_system_instruction_config_and_tools():
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Weather?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "c1", "content": "3C"},
        ],
        "temperature": 0.1,
        "top_p": 0.9,
        "max_tokens": 50,
        "stop": ["END"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "now",
                    "strict": True,
                    "parameters": {"type": "object"},
                },
            }
        ],
        "tool_choice": {"type": "function", "function": {"name": "weather"}},
    }
    request = ADAPTER.chat_request(PROVIDER, "gemini-1.5/flash", body, "g-key", stream=True)
    assert request.url == (
        "https://generativelanguage.test/v1beta/models/gemini-1.5%2Fflash"
        ":streamGenerateContent?alt=sse"
    )
    assert request.headers == {"Content-Type": "application/json", "x-goog-api-key": "g-key"}
    assert request.json == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather?"}]},
            {
                "role": "model",
                "parts": [{"functionCall": {"name": "weather", "args": {"city": "Oslo"}}}],
            },
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "weather", "response": {"content": "3C"}}}],
            },
        ],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.1,
            "topP": 0.9,
            "maxOutputTokens": 50,
            "stopSequences": ["END"],
        },
        "tools": [
            {
                "functionDeclarations": [
                    {"name": "weather", "description": "now", "parameters": {"type": "object"}}
                ]
            }
        ],
        "toolConfig": {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["weather"]}
        },
    }


def test_non_stream_request_uses_generate_content_and_string_tool_choice():
    body = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f"}}],
        "tool_choice": "none",
    }
    request = ADAPTER.chat_request(PROVIDER, "gemini-pro", body, "k", stream=False)
    assert request.url.endswith("/v1beta/models/gemini-pro:generateContent")
    assert request.json["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    assert "generationConfig" not in request.json


def test_chat_response_translates_text_function_calls_finish_and_usage():
    recorded = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Sure, "},
                        {"text": "calling."},
                        {"functionCall": {"name": "weather", "args": {"city": "Oslo"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 3},
    }
    answer = ADAPTER.chat_response(recorded, "flash")
    assert answer["model"] == "flash" and answer["object"] == "chat.completion"
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Sure, calling.",
                "tool_calls": [
                    {
                        "id": "call_0",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert answer["usage"] == {"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}
    safety = ADAPTER.chat_response({"candidates": [{"finishReason": "SAFETY"}]}, "flash")
    assert safety["choices"][0]["message"] == {"role": "assistant", "content": None}
    assert safety["choices"][0]["finish_reason"] == "content_filter"


def test_stream_chunks_start_with_the_role_and_end_with_the_finish_reason():
    translator = ADAPTER.stream_translator("flash")
    recorded = [
        {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]},
        {
            "candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "MAX_TOKENS"}],
            "usageMetadata": {"promptTokenCount": 4, "candidatesTokenCount": 2},
        },
    ]
    chunks = [c for data in recorded for c in translator.feed("", orjson.dumps(data).decode())]
    assert [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks] == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hel"}, None),
        ({"content": "lo"}, None),
        ({}, "length"),
    ]
    assert {c["id"] for c in chunks} == {translator.id}
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (4, 2)


def test_streamed_function_call_gets_an_id_and_finishes_as_tool_calls():
    translator = ADAPTER.stream_translator("flash")
    data = {
        "candidates": [
            {
                "content": {"parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                "finishReason": "STOP",
            }
        ]
    }
    chunks = translator.feed("", orjson.dumps(data).decode())
    call = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert call == {
        "index": 0,
        "id": f"call_0_{translator.id[-8:]}",
        "type": "function",
        "function": {"name": "f", "arguments": '{"a":1}'},
    }
    assert chunks[2]["choices"][0]["finish_reason"] == "tool_calls"
    try:
        translator.feed("", '{"error": {"code": 500, "message": "internal"}}')
    except StreamError as exc:
        assert str(exc) == "internal"
    else:
        raise AssertionError("an error payload must raise StreamError")


def test_embeddings_batch_request_and_response():
    request = ADAPTER.embeddings_request(PROVIDER, "text-embedding-004", {"input": ["a", "b"]}, "k")
    assert request.url == (
        "https://generativelanguage.test/v1beta/models/text-embedding-004:batchEmbedContents"
    )
    assert request.json == {
        "requests": [
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}},
            {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}},
        ]
    }
    answer = ADAPTER.embeddings_response(
        {"embeddings": [{"values": [1.0]}, {"values": [2.0]}]}, "emb"
    )
    assert answer == {
        "object": "list",
        "model": "emb",
        "data": [
            {"object": "embedding", "index": 0, "embedding": [1.0]},
            {"object": "embedding", "index": 1, "embedding": [2.0]},
        ],
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }


def test_bad_key_400_rotates_other_400_is_fatal():
    bad_key = {
        "error": {
            "code": 400,
            "message": "API key not valid. Please pass a valid API key.",
            "status": "INVALID_ARGUMENT",
            "details": [{"reason": "API_KEY_INVALID"}],
        }
    }
    assert ADAPTER.classify(400, bad_key) == AUTH_REFUSED
    assert ADAPTER.classify(400, {"error": {"message": "bad contents"}}) == FATAL
