"""The shape of each AI endpoint's request body, checked before anything is routed.

A request no provider could serve gets `400 bad_request` whose `param` names the field
as OpenAI's errors do ("messages[0].role") and whose message says what was expected.
Only what the gateway or the providers depend on is checked: fields not listed here
pass through untouched, and null is accepted for every optional field (SDKs send it;
providers treat it as unset).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pygate.ai.errors import AiError

MISSING = object()
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
ANTHROPIC_ROLES = ("user", "assistant")


class BadField(AiError):
    def __init__(self, param: str, expected: str, got: Any) -> None:
        message = f"{param}: expected {expected}, got {_shown(got)}"
        super().__init__(400, "bad_request", message, param=param)


def _shown(value: Any) -> str:
    if value is MISSING:
        return "nothing (the field is required)"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    if isinstance(value, str):
        return f"the string {value[:40]!r}" if value else "an empty string"
    if isinstance(value, list):
        return "an empty array" if not value else "an array"
    return "an object" if isinstance(value, dict) else type(value).__name__


# ----- field checks: each raises BadField or returns -----------------------------------
def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _text(value: Any, param: str) -> None:
    if not isinstance(value, str) or not value:
        raise BadField(param, "a non-empty string", value)


def _integer(minimum: int) -> Callable[[Any, str], None]:
    def check(value: Any, param: str) -> None:
        if not _is_int(value) or value < minimum:
            raise BadField(param, f"an integer of at least {minimum}", value)

    return check


def _number(value: Any, param: str) -> None:
    if not _is_number(value):
        raise BadField(param, "a number", value)


def _boolean(value: Any, param: str) -> None:
    if not isinstance(value, bool):
        raise BadField(param, "true or false", value)


def _string(value: Any, param: str) -> None:
    if not isinstance(value, str):
        raise BadField(param, "a string", value)


def _object(value: Any, param: str) -> None:
    if not isinstance(value, dict):
        raise BadField(param, "an object", value)


def _strings(value: Any, param: str) -> None:
    if not isinstance(value, list):
        raise BadField(param, "an array of strings", value)
    for index, item in enumerate(value):
        _string(item, f"{param}[{index}]")


def _string_or_strings(value: Any, param: str) -> None:
    if not isinstance(value, str):
        if not isinstance(value, list):
            raise BadField(param, "a string or an array of strings", value)
        _strings(value, param)


def _string_or_object(value: Any, param: str) -> None:
    if not isinstance(value, str | dict):
        raise BadField(param, "a string or an object", value)


def _optional(body: dict[str, Any], fields: dict[str, Callable[[Any, str], None]]) -> None:
    for name, check in fields.items():
        value = body.get(name)
        if value is not None:
            check(value, name)


def _non_empty_array(value: Any, param: str, of: str) -> list:
    if not isinstance(value, list) or not value:
        raise BadField(param, f"a non-empty array of {of}", value)
    return value


def _content_parts(content: Any, param: str) -> None:
    for index, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise BadField(f"{param}[{index}]", 'an object with a "type"', part)


# ----- OpenAI chat completions ---------------------------------------------------------
CHAT_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "stream": _boolean,
    "max_tokens": _integer(1),
    "max_completion_tokens": _integer(1),
    "n": _integer(1),
    "seed": _integer(-(2**63)),
    "top_logprobs": _integer(0),
    "temperature": _number,
    "top_p": _number,
    "presence_penalty": _number,
    "frequency_penalty": _number,
    "stop": _string_or_strings,
    "tool_choice": _string_or_object,
    "stream_options": _object,
    "response_format": _object,
    "metadata": _object,
    "logit_bias": _object,
    "user": _string,
    "logprobs": _boolean,
    "parallel_tool_calls": _boolean,
    "store": _boolean,
}


def check_chat(body: dict[str, Any]) -> None:
    _text(body.get("model", MISSING), "model")
    messages = _non_empty_array(body.get("messages", MISSING), "messages", "messages")
    for index, message in enumerate(messages):
        _chat_message(message, f"messages[{index}]")
    _optional(body, CHAT_FIELDS)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadField("tools", "an array of tools", tools)
        for index, tool in enumerate(tools):
            _chat_tool(tool, f"tools[{index}]")


def _chat_message(message: Any, at: str) -> None:
    if not isinstance(message, dict):
        raise BadField(at, 'a message object ({"role": ..., "content": ...})', message)
    role = message.get("role", MISSING)
    if role not in CHAT_ROLES:
        raise BadField(f"{at}.role", "one of " + ", ".join(CHAT_ROLES), role)
    content = message.get("content")
    if isinstance(content, list):
        _content_parts(content, f"{at}.content")
    elif not isinstance(content, str) and not (content is None and role == "assistant"):
        raise BadField(f"{at}.content", "a string or an array of content parts", content)
    if role == "tool":
        _text(message.get("tool_call_id", MISSING), f"{at}.tool_call_id")
    calls = message.get("tool_calls")
    if calls is not None:
        if not isinstance(calls, list):
            raise BadField(f"{at}.tool_calls", "an array of tool calls", calls)
        for index, call in enumerate(calls):
            where = f"{at}.tool_calls[{index}]"
            if not isinstance(call, dict):
                raise BadField(where, "a tool call object", call)
            function = call.get("function", MISSING)
            if not isinstance(function, dict):
                raise BadField(
                    f"{where}.function", 'an object with "name" and "arguments"', function
                )
            _text(function.get("name", MISSING), f"{where}.function.name")
            _string(function.get("arguments", ""), f"{where}.function.arguments")


def _chat_tool(tool: Any, at: str) -> None:
    if not isinstance(tool, dict):
        raise BadField(at, "a tool object", tool)
    if tool.get("type", "function") != "function":
        return  # a provider's own tool type: theirs to check
    function = tool.get("function", MISSING)
    if not isinstance(function, dict):
        raise BadField(f"{at}.function", 'an object with a "name"', function)
    _text(function.get("name", MISSING), f"{at}.function.name")
    _optional(function, {"description": _string, "parameters": _object})


# ----- OpenAI embeddings ---------------------------------------------------------------
def check_embeddings(body: dict[str, Any]) -> None:
    _text(body.get("model", MISSING), "model")
    inputs = body.get("input", MISSING)
    expected = "a string, an array of strings or an array of token arrays"
    if isinstance(inputs, str):
        if not inputs:
            raise BadField("input", expected, inputs)
    elif isinstance(inputs, list) and inputs:
        if not all(_is_int(token) for token in inputs):  # one token array is fine as is
            for index, item in enumerate(inputs):
                tokens = isinstance(item, list) and item and all(_is_int(t) for t in item)
                if not (isinstance(item, str) and item) and not tokens:
                    raise BadField(f"input[{index}]", "a non-empty string or token array", item)
    else:
        raise BadField("input", expected, inputs)
    encoding = body.get("encoding_format")
    if encoding is not None and encoding not in ("float", "base64"):
        raise BadField("encoding_format", '"float" or "base64"', encoding)
    _optional(body, {"dimensions": _integer(1), "user": _string})


# ----- Anthropic messages --------------------------------------------------------------
ANTHROPIC_FIELDS: dict[str, Callable[[Any, str], None]] = {
    "stream": _boolean,
    "temperature": _number,
    "top_p": _number,
    "top_k": _integer(0),
    "stop_sequences": _strings,
    "tool_choice": _object,
    "metadata": _object,
}


def check_messages(body: dict[str, Any]) -> None:
    _text(body.get("model", MISSING), "model")
    _integer(1)(body.get("max_tokens", MISSING), "max_tokens")  # required by Anthropic's API
    messages = _non_empty_array(body.get("messages", MISSING), "messages", "messages")
    for index, message in enumerate(messages):
        at = f"messages[{index}]"
        if not isinstance(message, dict):
            raise BadField(at, 'a message object ({"role": ..., "content": ...})', message)
        role = message.get("role", MISSING)
        if role not in ANTHROPIC_ROLES:
            raise BadField(f"{at}.role", '"user" or "assistant"', role)
        content = message.get("content", MISSING)
        if isinstance(content, list):
            _content_parts(content, f"{at}.content")
            for b_index, block in enumerate(content):
                _anthropic_block(block, f"{at}.content[{b_index}]")
        elif not isinstance(content, str):
            raise BadField(f"{at}.content", "a string or an array of content blocks", content)
    system = body.get("system")
    if isinstance(system, list):
        _content_parts(system, "system")
    elif system is not None and not isinstance(system, str):
        raise BadField("system", "a string or an array of text blocks", system)
    _optional(body, ANTHROPIC_FIELDS)
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise BadField("tools", "an array of tools", tools)
        for index, tool in enumerate(tools):
            if not isinstance(tool, dict):
                raise BadField(f"tools[{index}]", "a tool object", tool)
            _text(tool.get("name", MISSING), f"tools[{index}].name")


def _anthropic_block(block: dict[str, Any], at: str) -> None:
    """The blocks the gateway translates: what it reads from them must be there."""
    kind = block["type"]
    if kind == "text":
        _string(block.get("text", MISSING), f"{at}.text")
    elif kind == "tool_use":
        _text(block.get("id", MISSING), f"{at}.id")
        _text(block.get("name", MISSING), f"{at}.name")
        _object(block.get("input", MISSING), f"{at}.input")
    elif kind == "tool_result":
        _text(block.get("tool_use_id", MISSING), f"{at}.tool_use_id")
