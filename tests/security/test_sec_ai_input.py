"""What the AI listener answers to input it cannot serve: always the gateway's JSON error
(the OpenAI shape SDKs parse: error.message/type/param/code, plus kind, status and
request_id; Anthropic's shape on /v1/messages), never aiohttp's plain text, never a
Python/aiohttp banner, and never a malformed request passed on to a provider.

Through the real gateway (the core in front), with raw HTTP and the real SDKs.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from support.ai_setup import CONSUMERS, ai_row, new_request_id
from support.client import fetch

KEY = {"Authorization": f"Bearer {CONSUMERS['alice']}"}
HELLO = [{"role": "user", "content": "hello"}]


def call(gateway, method: str, path: str, body=None, raw: bytes | None = None, **headers):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    sent = {**KEY, **headers}
    if data is not None:
        sent.setdefault("Content-Type", "application/json")
    return fetch(method, gateway.url(path), data=data, headers=sent)


def assert_openai_error(resp, status: int, kind: str, param: str | None = None) -> dict:
    assert resp.status == status, (resp.status, resp.body[:300])
    assert resp.header("content-type").startswith("application/json"), resp.headers
    error = resp.json()["error"]
    assert (error["status"], error["kind"], error["type"], error["code"]) == (
        status,
        kind,
        kind,
        kind,
    ), error
    assert error["param"] == param, error
    assert error["message"] and error["request_id"] == resp.header("x-request-id")
    assert "server" not in resp.headers, resp.headers
    return error


def assert_anthropic_error(resp, status: int, kind: str) -> dict:
    assert resp.status == status, (resp.status, resp.body[:300])
    doc = resp.json()
    assert doc["type"] == "error" and doc["error"]["kind"] == kind, doc
    assert doc["error"]["type"] in ("invalid_request_error", "not_found_error", "api_error")
    assert "server" not in resp.headers, resp.headers
    return doc["error"]


# ----- errors aiohttp used to answer in plain text ------------------------------------
@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("GET", "/v1/chat/completions", "POST"),
        ("DELETE", "/v1/chat/completions", "POST"),
        ("POST", "/v1/models", "GET"),
        ("PUT", "/v1/embeddings", "POST"),
        ("PATCH", "/v1/chat/completions", "POST"),
    ],
)
def test_wrong_method_is_a_json_405(ai_gw, method, path, allow):
    resp = call(ai_gw, method, path, body={} if method != "GET" else None)
    assert_openai_error(resp, 405, "method_not_allowed")
    assert resp.header("allow") == allow


def test_wrong_method_on_messages_is_anthropic_shaped(ai_gw):
    resp = call(ai_gw, "GET", "/v1/messages")
    assert_anthropic_error(resp, 405, "method_not_allowed")
    assert resp.header("allow") == "POST"


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"],
)
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/ai/sentiment"])
def test_non_json_content_type_is_refused(ai_gw, emulators, content_type, path):
    before = len(emulators.calls())
    body = json.dumps({"model": "gpt", "messages": HELLO, "input": "x", "text": "t", "scale": 1})
    resp = call(ai_gw, "POST", path, raw=body.encode(), **{"Content-Type": content_type})
    assert_openai_error(resp, 415, "unsupported_media_type")
    assert len(emulators.calls()) == before


@pytest.mark.parametrize("raw", [b"{bad", b"", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_bodies_that_are_not_a_json_object(ai_gw, raw):
    assert_openai_error(call(ai_gw, "POST", "/v1/chat/completions", raw=raw), 400, "bad_request")
    assert_anthropic_error(call(ai_gw, "POST", "/v1/messages", raw=raw), 400, "bad_request")


def test_unknown_model_path_and_too_large_body(ai_gw):
    assert_openai_error(call(ai_gw, "GET", "/v1/models/no-such-model"), 404, "unknown_model")
    found = call(ai_gw, "GET", "/v1/models/gpt")
    assert found.status == 200 and found.json()["id"] == "gpt"
    big = b'{"model": "gpt", "messages": [], "pad": "' + b"x" * (11 * 1024 * 1024) + b'"}'
    resp = call(ai_gw, "POST", "/v1/chat/completions", raw=big)
    assert resp.status == 413 and resp.json()["error"]["kind"] == "body_too_large"


def test_no_python_banner_on_answers(ai_gw):
    ok = call(ai_gw, "POST", "/v1/chat/completions", body={"model": "gpt", "messages": HELLO})
    assert ok.status == 200 and "server" not in ok.headers
    listed = call(ai_gw, "GET", "/v1/models")
    assert listed.status == 200 and "server" not in listed.headers
    head = call(ai_gw, "HEAD", "/v1/models")
    assert head.status == 200 and "server" not in head.headers
    stream = call(
        ai_gw,
        "POST",
        "/v1/chat/completions",
        body={"model": "gpt", "messages": HELLO, "stream": True},
    )
    assert stream.status == 200 and "server" not in stream.headers


# ----- request shapes ------------------------------------------------------------------
CHAT_MISTAKES = [
    ({"model": "gpt"}, "messages"),
    ({"model": "gpt", "messages": "hi"}, "messages"),
    ({"model": "gpt", "messages": []}, "messages"),
    ({"model": "gpt", "messages": [1]}, "messages[0]"),
    ({"model": "gpt", "messages": [{"content": "x"}]}, "messages[0].role"),
    ({"model": "gpt", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
    ({"model": "gpt", "messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
    ({"model": "gpt", "messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]"),
    ({"model": "gpt", "messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
    (
        {"model": "gpt", "messages": [{"role": "assistant", "tool_calls": [{"id": "c"}]}]},
        "messages[0].tool_calls[0].function",
    ),
    ({"messages": HELLO}, "model"),
    ({"model": 5, "messages": HELLO}, "model"),
    ({"model": "", "messages": HELLO}, "model"),
    ({"model": "gpt", "messages": HELLO, "stream": "yes"}, "stream"),
    ({"model": "gpt", "messages": HELLO, "max_tokens": "10"}, "max_tokens"),
    ({"model": "gpt", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"model": "gpt", "messages": HELLO, "max_tokens": True}, "max_tokens"),
    ({"model": "gpt", "messages": HELLO, "max_completion_tokens": 1.5}, "max_completion_tokens"),
    ({"model": "gpt", "messages": HELLO, "temperature": "hot"}, "temperature"),
    ({"model": "gpt", "messages": HELLO, "n": 0}, "n"),
    ({"model": "gpt", "messages": HELLO, "stop": 5}, "stop"),
    ({"model": "gpt", "messages": HELLO, "stop": ["a", 1]}, "stop[1]"),
    ({"model": "gpt", "messages": HELLO, "tools": "x"}, "tools"),
    ({"model": "gpt", "messages": HELLO, "tools": [{"type": "function"}]}, "tools[0].function"),
    (
        {"model": "gpt", "messages": HELLO, "tools": [{"type": "function", "function": {}}]},
        "tools[0].function.name",
    ),
    ({"model": "gpt", "messages": HELLO, "tool_choice": 5}, "tool_choice"),
    ({"model": "gpt", "messages": HELLO, "stream_options": "x"}, "stream_options"),
    ({"model": "gpt", "messages": HELLO, "response_format": "json"}, "response_format"),
]


@pytest.mark.parametrize("body,param", CHAT_MISTAKES)
def test_malformed_chat_requests_get_400(ai_gw, emulators, body, param):
    before, rid = len(emulators.calls()), new_request_id()
    resp = call(ai_gw, "POST", "/v1/chat/completions", body=body, **{"X-Request-Id": rid})
    error = assert_openai_error(resp, 400, "bad_request", param)
    assert param.split("[")[0].split(".")[0] in error["message"]
    assert len(emulators.calls()) == before  # nothing reached a provider
    row = ai_row(ai_gw, rid)
    assert (row["status"], row["attempts"], row["endpoint"]) == (400, 0, "chat")


EMBEDDING_MISTAKES = [
    ({"model": "openai/text-embedding-3-small"}, "input"),
    ({"model": "openai/text-embedding-3-small", "input": 5}, "input"),
    ({"model": "openai/text-embedding-3-small", "input": []}, "input"),
    ({"model": "openai/text-embedding-3-small", "input": ["a", None]}, "input[1]"),
    ({"model": "openai/text-embedding-3-small", "input": "a", "dimensions": "8"}, "dimensions"),
    (
        {"model": "openai/text-embedding-3-small", "input": "a", "encoding_format": 1},
        "encoding_format",
    ),
    ({"input": "a"}, "model"),
]


@pytest.mark.parametrize("body,param", EMBEDDING_MISTAKES)
def test_malformed_embedding_requests_get_400(ai_gw, emulators, body, param):
    before = len(emulators.calls())
    resp = call(ai_gw, "POST", "/v1/embeddings", body=body)
    assert_openai_error(resp, 400, "bad_request", param)
    assert len(emulators.calls()) == before


MESSAGES_MISTAKES = [
    {"model": "claude", "max_tokens": 10},
    {"model": "claude", "max_tokens": 10, "messages": []},
    {"model": "claude", "max_tokens": 10, "messages": "hi"},
    {"model": "claude", "max_tokens": 10, "messages": [{"role": "system", "content": "x"}]},
    {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": 5}]},
    {"model": "claude", "max_tokens": 10, "messages": [{"role": "user", "content": [{}]}]},
    {"model": "claude", "messages": HELLO},
    {"model": "claude", "max_tokens": "10", "messages": HELLO},
    {"max_tokens": 10, "messages": HELLO},
    {"model": "claude", "max_tokens": 10, "messages": HELLO, "system": 5},
    {"model": "claude", "max_tokens": 10, "messages": HELLO, "stream": "no"},
    {"model": "claude", "max_tokens": 10, "messages": HELLO, "tools": [{"description": "x"}]},
    {
        "model": "claude",
        "max_tokens": 10,
        "messages": [{"role": "assistant", "content": [{"type": "tool_use", "name": "f"}]}],
    },
    {
        "model": "claude",
        "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "tool_result", "content": "x"}]}],
    },
]


@pytest.mark.parametrize("body", MESSAGES_MISTAKES)
def test_malformed_anthropic_requests_get_400(ai_gw, emulators, body):
    before = len(emulators.calls())
    resp = call(ai_gw, "POST", "/v1/messages", body=body)
    error = assert_anthropic_error(resp, 400, "bad_request")
    assert error["type"] == "invalid_request_error"
    assert len(emulators.calls()) == before


# ----- valid requests still pass, unknown fields included ------------------------------
def test_valid_but_unusual_requests_pass(ai_gw):
    bodies = [
        {"model": "gpt", "messages": HELLO, "x_vendor_flag": {"a": 1}, "metadata": {"k": "v"}},
        {"model": "gpt", "messages": HELLO, "temperature": None, "max_tokens": None, "user": "u"},
        {
            "model": "gpt",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hello"}]},
            ],
            "stop": ["x"],
            "n": 1,
            "seed": 3,
            "response_format": {"type": "text"},
        },
        {"model": "openai/gpt-4o-mini", "messages": HELLO, "stream": False, "top_p": 1},
    ]
    for body in bodies:
        resp = call(ai_gw, "POST", "/v1/chat/completions", body=body)
        assert resp.status == 200, resp.body[:300]
        assert resp.json()["choices"][0]["message"]["content"] == "echo: hello"
    tokens = call(
        ai_gw, "POST", "/v1/embeddings", body={"model": "openai/e", "input": [[1, 2], [3]]}
    )
    assert tokens.status == 200, tokens.body[:300]
    anthropic_body = {
        "model": "claude",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "be brief"}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
        "metadata": {"user_id": "u"},
    }
    resp = call(ai_gw, "POST", "/v1/messages", body=anthropic_body)
    assert resp.status == 200 and resp.json()["content"][0]["text"] == "echo: hello"


def test_the_sdks_parse_the_400(ai_gw):
    api = openai.OpenAI(base_url=ai_gw.url("/v1"), api_key=CONSUMERS["alice"], max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        api.chat.completions.create(model="gpt", messages=[])
    assert (caught.value.param, caught.value.code) == ("messages", "bad_request")
    assert "messages" in caught.value.message
    with pytest.raises(openai.BadRequestError) as caught:
        api.embeddings.create(model="openai/e", input=[])
    assert caught.value.param == "input"
    claude = anthropic.Anthropic(base_url=ai_gw.url(""), api_key=CONSUMERS["alice"], max_retries=0)
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model="claude", max_tokens=10, messages=[])
    assert "messages" in caught.value.message
    assert caught.value.body["error"]["type"] == "invalid_request_error"


def test_history_a_provider_cannot_be_sent_is_a_400(ai_gw):
    """Tool-call arguments that are not JSON pass to OpenAI as they are, but cannot be
    turned into Anthropic's or Gemini's tool_use input: the caller's mistake, not a 500."""
    history = [
        {"role": "user", "content": "x"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{no"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "r"},
    ]
    for model in ("claude", "gemini/gemini-1.5-flash"):
        resp = call(
            ai_gw, "POST", "/v1/chat/completions", body={"model": model, "messages": history}
        )
        error = assert_openai_error(resp, 400, "bad_request")
        assert "arguments" in error["message"], error
