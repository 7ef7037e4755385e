"""The AI gateway's unified API through the real gateway, with the real SDKs.

openai and anthropic SDK clients talk to `pygate serve`; the core authenticates them
with their consumer keys and proxies to the AI listener, which calls the provider
emulators. Every call must leave a pygate.ai_calls row with the right tokens and cost.
"""

from __future__ import annotations

import json

import anthropic
import openai
import pytest
from support.ai_setup import CONSUMERS, ai_row, cost, new_request_id

PROMPT = [{"role": "user", "content": "hello there gateway"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {"type": "object", "properties": {"echo": {"type": "string"}}},
    },
}


def client(gateway, consumer: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(
        base_url=gateway.url("/v1"), api_key=CONSUMERS[consumer], max_retries=0, timeout=30
    )


def expected_tokens(messages: list[dict]) -> tuple[int, int]:
    """What the emulators report: words of every message; the reply is 'echo: <last>'."""
    prompt = sum(len(m["content"].split()) for m in messages)
    completion = 1 + len(messages[-1]["content"].split())
    return prompt, completion


@pytest.mark.parametrize(
    "model,qualified",
    [
        ("openai/gpt-4o-mini", "openai/gpt-4o-mini"),
        ("claude", "anthropic/claude-3-5-haiku"),
        ("gemini/gemini-1.5-flash", "gemini/gemini-1.5-flash"),
        ("mistral/mistral-small", "mistral/mistral-small"),
        ("azure/gpt4o-deploy", "azure/gpt4o-deploy"),
    ],
)
@pytest.mark.parametrize("stream", [False, True])
def test_chat_every_provider(ai_gw, model, qualified, stream):
    rid = new_request_id()
    headers = {"X-Request-Id": rid}
    prompt, completion = expected_tokens(PROMPT)
    api = client(ai_gw)
    if stream:
        chunks = list(
            api.chat.completions.create(
                model=model,
                messages=PROMPT,
                stream=True,
                stream_options={"include_usage": True},
                extra_headers=headers,
            )
        )
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices][-1]
    else:
        answer = api.chat.completions.create(model=model, messages=PROMPT, extra_headers=headers)
        text, finish = answer.choices[0].message.content, answer.choices[0].finish_reason
        assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, completion)
    assert text == "echo: hello there gateway"
    assert finish == "stop"
    row = ai_row(ai_gw, rid)
    assert f"{row['provider']}/{row['model']}" == qualified
    assert (row["prompt_tokens"], row["completion_tokens"]) == (prompt, completion)
    assert row["tokens_estimated"] is False
    assert row["cost_usd"] == pytest.approx(cost(qualified, prompt, completion))
    assert row["streamed"] is stream and row["status"] == 200 and row["consumer"] == "alice"
    assert row["alias"] == model and row["fallback_used"] == ""
    # Joinable with the core's record of the same call.
    request = ai_gw.records([rid])[rid]
    assert (request["route"], request["consumer"], request["status"]) == (
        "pygate-ai-api",
        "alice",
        200,
    )


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "claude", "gemini/gemini-1.5-flash"])
@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_are_translated(ai_gw, model, stream):
    api = client(ai_gw)
    messages = [{"role": "user", "content": "Paris"}]
    kwargs = {"model": model, "messages": messages, "tools": [WEATHER_TOOL]}
    if stream:
        name, arguments, finish = "", "", None
        for chunk in api.chat.completions.create(**kwargs, stream=True):
            for choice in chunk.choices:
                for call in choice.delta.tool_calls or ():
                    name += call.function.name or ""
                    arguments += call.function.arguments or ""
                finish = choice.finish_reason or finish
    else:
        answer = api.chat.completions.create(**kwargs)
        [call] = answer.choices[0].message.tool_calls
        name, arguments, finish = (
            call.function.name,
            call.function.arguments,
            (answer.choices[0].finish_reason),
        )
    assert name == "get_weather"
    assert json.loads(arguments) == {"echo": "Paris"}
    assert finish == "tool_calls"


def test_tool_results_go_back_to_anthropic(ai_gw):
    messages = [
        {"role": "user", "content": "weather please"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"echo": "x"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    answer = client(ai_gw).chat.completions.create(model="claude", messages=messages)
    # The emulator echoes the last user turn: the tool result reached it as one.
    assert answer.choices[0].message.content == "echo: sunny"


def test_anthropic_sdk_unchanged(ai_gw):
    api = anthropic.Anthropic(
        base_url=ai_gw.url(""), api_key=CONSUMERS["alice"], max_retries=0, timeout=30
    )
    for model in ("claude", "openai/gpt-4o-mini"):
        rid = new_request_id()
        message = api.messages.create(
            model=model, max_tokens=100, messages=PROMPT, extra_headers={"X-Request-Id": rid}
        )
        assert message.content[0].text == "echo: hello there gateway"
        assert message.stop_reason == "end_turn"
        assert (message.usage.input_tokens, message.usage.output_tokens) == (3, 4)
        with api.messages.stream(model=model, max_tokens=100, messages=PROMPT) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
        assert text == "echo: hello there gateway"
        assert (final.usage.input_tokens, final.usage.output_tokens) == (3, 4)
        row = ai_row(ai_gw, rid)
        assert row["endpoint"] == "messages" and row["prompt_tokens"] == 3


def test_anthropic_sdk_tool_use(ai_gw):
    api = anthropic.Anthropic(base_url=ai_gw.url(""), api_key=CONSUMERS["alice"], max_retries=0)
    tool = {"name": "get_weather", "description": "w", "input_schema": {"type": "object"}}
    message = api.messages.create(
        model="gemini/gemini-1.5-flash",
        max_tokens=100,
        tools=[tool],
        messages=[{"role": "user", "content": "Oslo"}],
    )
    [block] = message.content
    assert (block.type, block.name, block.input) == ("tool_use", "get_weather", {"echo": "Oslo"})
    assert message.stop_reason == "tool_use"


def test_embeddings_and_models(ai_gw):
    api = client(ai_gw)
    for model in ("openai/text-embedding-3-small", "gemini/text-embedding-004"):
        result = api.embeddings.create(model=model, input=["one two", "three"])
        assert len(result.data) == 2 and len(result.data[0].embedding) == 8
    names = {m.id for m in api.models.list()}
    assert {"gpt", "claude", "pooled", "openai/gpt-4o-mini"} <= names


def test_unknown_model_and_bad_key(ai_gw):
    with pytest.raises(openai.NotFoundError) as caught:
        client(ai_gw).chat.completions.create(model="nope/x", messages=PROMPT)
    assert "unknown model" in caught.value.message
    bad = openai.OpenAI(base_url=ai_gw.url("/v1"), api_key="not-a-key", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt", messages=PROMPT)


def test_provider_keys_never_reach_the_caller(ai_gw, emulators):
    emulators.fail("mistral", "500", count=2)
    with pytest.raises(openai.APIStatusError) as caught:
        client(ai_gw).chat.completions.create(
            model="mistral/mistral-small", messages=[{"role": "user", "content": "keys?"}]
        )
    text = caught.value.response.text
    # The emulator put the key into its error message; the gateway must blank it.
    assert "internal server error (request made with key ***)" in text
    assert "mis-key-1" not in text and caught.value.status_code == 502
    assert "mis-key-1" not in ai_gw.log_text()


def test_ai_call_log_counters_in_status_and_metrics(ai_gw):
    rid = new_request_id()
    client(ai_gw).chat.completions.create(
        model="gpt", messages=PROMPT, extra_headers={"X-Request-Id": rid}
    )
    ai_row(ai_gw, rid)  # shipped: the counter has moved
    status = ai_gw.status()
    assert status["ai_log_rows_written"] >= 1
    assert status["ai_log_rows_dropped"] == 0
    metrics = ai_gw.admin_text("/metrics")
    written = [line for line in metrics.splitlines() if line.startswith("pygate_ai_log_rows_")]
    assert any(line.split()[-1] not in ("0", "0.0") for line in written), written
