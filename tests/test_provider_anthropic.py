"""Anthropic adapter on recorded payloads: OpenAI chat in, Messages API out, and back.

Calls the adapter directly (no network, no gateway); the emulator tests in
tests/test_ai_gateway.py cover the same adapter end to end.
"""

from __future__ import annotations

import orjson

from pygate.ai.providers import ADAPTERS
from pygate.ai.providers.base import AUTH_REFUSED, RETRYABLE, StreamError
from pygate.config.ai_schema import Provider

ADAPTER = ADAPTERS["anthropic"]
PROVIDER = Provider(name="claude", kind="anthropic", base_url="https://api.anthropic.test/")


def test_chat_request_moves_system_tools_and_tool_results_into_anthropic_shape():
    body = {
        "model": "ignored",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city": "Oslo"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "3C"},
        ],
        "max_tokens": 100,
        "temperature": 0.2,
        "stop": "END",
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "weather",
                    "description": "current weather",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
                },
            }
        ],
        "tool_choice": "required",
    }
    request = ADAPTER.chat_request(PROVIDER, "claude-3-5", body, "sk-ant", stream=True)
    assert request.url == "https://api.anthropic.test/v1/messages"
    assert request.headers == {
        "Content-Type": "application/json",
        "x-api-key": "sk-ant",
        "anthropic-version": "2023-06-01",
    }
    assert request.json == {
        "model": "claude-3-5",
        "system": "Be brief.\n\nUse tools.",
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "call_1",
                        "name": "weather",
                        "input": {"city": "Oslo"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "3C"}],
            },
        ],
        "max_tokens": 100,
        "temperature": 0.2,
        "stop_sequences": ["END"],
        "tools": [
            {
                "name": "weather",
                "description": "current weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "any"},
        "stream": True,
    }


def test_chat_request_without_max_tokens_sends_the_default_and_no_stream_flag():
    body = {"messages": [{"role": "user", "content": "hi"}], "tool_choice": "auto"}
    request = ADAPTER.chat_request(PROVIDER, "claude-3-5", body, "k", stream=False)
    assert request.json == {
        "model": "claude-3-5",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 4096,
    }


def test_chat_response_becomes_an_openai_completion_with_tool_calls_and_usage():
    recorded = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me "},
            {"type": "text", "text": "check."},
            {"type": "tool_use", "id": "toolu_9", "name": "weather", "input": {"city": "Oslo"}},
        ],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 21, "output_tokens": 7},
    }
    answer = ADAPTER.chat_response(recorded, "claude")
    assert answer["object"] == "chat.completion"
    assert answer["model"] == "claude"
    assert answer["id"].startswith("chatcmpl-")
    assert answer["choices"] == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [
                    {
                        "id": "toolu_9",
                        "type": "function",
                        "function": {"name": "weather", "arguments": '{"city":"Oslo"}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]
    assert answer["usage"] == {"prompt_tokens": 21, "completion_tokens": 7, "total_tokens": 28}


def test_max_tokens_stop_reason_maps_to_length():
    recorded = {"content": [{"type": "text", "text": "a"}], "stop_reason": "max_tokens"}
    answer = ADAPTER.chat_response(recorded, "claude")
    assert answer["choices"][0]["finish_reason"] == "length"
    assert answer["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


RECORDED_STREAM = [
    ("message_start", {"type": "message_start", "message": {"usage": {"input_tokens": 12}}}),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    (
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    ),
    ("ping", {"type": "ping"}),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "f"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "1}"},
        },
    ),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 5},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


def test_stream_events_become_openai_chunks_in_order_with_usage():
    translator = ADAPTER.stream_translator("claude")
    chunks = []
    for event, data in RECORDED_STREAM:
        chunks.extend(translator.feed(event, orjson.dumps(data).decode()))
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    assert {c["id"] for c in chunks} == {translator.id}
    assert {c["model"] for c in chunks} == {"claude"}
    deltas = [(c["choices"][0]["delta"], c["choices"][0]["finish_reason"]) for c in chunks]
    assert deltas == [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hi"}, None),
        (
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            },
            None,
        ),
        ({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}, None),
        ({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, None),
        ({}, "tool_calls"),
    ]
    assert (translator.usage.prompt_tokens, translator.usage.completion_tokens) == (12, 5)
    assert translator.text_chars == len("Hi") + len('{"a":1}')


def test_stream_error_event_raises_with_the_provider_message():
    translator = ADAPTER.stream_translator("claude")
    data = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    try:
        translator.feed("error", orjson.dumps(data).decode())
    except StreamError as exc:
        assert str(exc) == "Overloaded"
    else:
        raise AssertionError("an error event must raise StreamError")


def test_overloaded_529_is_retryable_and_refused_key_rotates():
    assert ADAPTER.classify(529, {}) == RETRYABLE
    assert ADAPTER.classify(401, {"error": {"message": "invalid x-api-key"}}) == AUTH_REFUSED
    body = {"type": "error", "error": {"type": "invalid_request_error", "message": "bad field"}}
    assert ADAPTER.error_message(body) == "bad field"
