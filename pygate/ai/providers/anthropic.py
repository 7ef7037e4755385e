"""Anthropic Messages API (/v1/messages), to and from the OpenAI chat format.

System messages become `system`; tool calls become `tool_use` blocks and tool
results `tool_result` blocks in a user turn; streamed events (message_start,
content_block_start/delta/stop, message_delta, message_stop, error) become OpenAI
chunks, with tool-call argument deltas (input_json_delta) kept in order.
"""

from __future__ import annotations

from typing import Any

import orjson

from pygate.ai.providers.base import (
    RETRYABLE,
    Adapter,
    ProviderRequest,
    StreamError,
    StreamTranslator,
    Usage,
    completion,
    join_url,
    parsed_arguments,
    text_of,
)
from pygate.config.ai_schema import Provider

API_VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
}


def to_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    system: list[str] = []
    messages: list[dict[str, Any]] = []
    for message in body.get("messages", []):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": text_of(message.get("content")),
            }
            if messages and messages[-1]["role"] == "user" and _all_tool_results(messages[-1]):
                messages[-1]["content"].append(block)
            else:
                messages.append({"role": "user", "content": [block]})
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            if text := text_of(message.get("content")):
                blocks.append({"type": "text", "text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": parsed_arguments(function.get("arguments")),
                    }
                )
            messages.append({"role": "assistant", "content": blocks})
        else:
            messages.append({"role": "user", "content": text_of(message.get("content"))})
    payload: dict[str, Any] = {
        "model": model,
        "messages": messages,
        "max_tokens": body.get("max_completion_tokens")
        or body.get("max_tokens")
        or DEFAULT_MAX_TOKENS,
    }
    if system:
        payload["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            payload[name] = body[name]
    stop = body.get("stop")
    if stop:
        payload["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("tools"):
        payload["tools"] = [
            {
                "name": tool["function"]["name"],
                "description": tool["function"].get("description", ""),
                "input_schema": tool["function"].get("parameters") or {"type": "object"},
            }
            for tool in body["tools"]
            if tool.get("type") == "function"
        ]
        choice = body.get("tool_choice")
        if choice == "required":
            payload["tool_choice"] = {"type": "any"}
        elif choice == "none":
            payload["tool_choice"] = {"type": "none"}
        elif isinstance(choice, dict):
            payload["tool_choice"] = {"type": "tool", "name": choice["function"]["name"]}
    return payload


def _all_tool_results(message: dict[str, Any]) -> bool:
    content = message["content"]
    return isinstance(content, list) and all(b.get("type") == "tool_result" for b in content)


class AnthropicStream(StreamTranslator):
    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._tool_index: dict[int, int] = {}  # content block index -> tool call index
        self._prompt_tokens = 0

    def feed(self, event: str, data: str) -> list[dict[str, Any]]:
        payload = orjson.loads(data)
        kind = payload.get("type", event)
        if kind == "message_start":
            usage = payload["message"].get("usage", {})
            self._prompt_tokens = usage.get("input_tokens", 0)
            return [self.chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = payload["content_block"]
            if block.get("type") == "tool_use":
                index = self._tool_index.setdefault(payload["index"], len(self._tool_index))
                call = {
                    "index": index,
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": ""},
                }
                return [self.chunk({"tool_calls": [call]})]
            return []
        if kind == "content_block_delta":
            delta = payload["delta"]
            if delta.get("type") == "text_delta":
                return [self.chunk({"content": delta["text"]})]
            if delta.get("type") == "input_json_delta":
                index = self._tool_index.get(payload["index"], 0)
                call = {"index": index, "function": {"arguments": delta["partial_json"]}}
                return [self.chunk({"tool_calls": [call]})]
            return []
        if kind == "message_delta":
            usage = payload.get("usage", {})
            self.usage = Usage(
                usage.get("input_tokens", self._prompt_tokens), usage.get("output_tokens", 0)
            )
            reason = FINISH.get(payload.get("delta", {}).get("stop_reason") or "", "stop")
            return [self.chunk({}, reason)]
        if kind == "error":
            raise StreamError(payload.get("error", {}).get("message", "provider stream error"))
        return []  # ping, content_block_stop, message_stop


class AnthropicAdapter(Adapter):
    kind = "anthropic"

    def chat_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str, stream: bool
    ) -> ProviderRequest:
        payload = to_anthropic(body, model)
        if stream:
            payload["stream"] = True
        headers = {
            "Content-Type": "application/json",
            "x-api-key": key,
            "anthropic-version": API_VERSION,
        }
        return ProviderRequest(join_url(provider.base_url, "/v1/messages"), headers, payload)

    def chat_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        text = "".join(b.get("text", "") for b in data.get("content", []) if b["type"] == "text")
        calls = [
            {
                "id": block["id"],
                "type": "function",
                "function": {
                    "name": block["name"],
                    "arguments": orjson.dumps(block["input"]).decode(),
                },
            }
            for block in data.get("content", [])
            if block["type"] == "tool_use"
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        usage = data.get("usage", {})
        return completion(
            model,
            message,
            FINISH.get(data.get("stop_reason") or "", "stop"),
            Usage(usage.get("input_tokens", 0), usage.get("output_tokens", 0)),
        )

    def stream_translator(self, model: str) -> StreamTranslator:
        return AnthropicStream(model)

    def classify(self, status: int, body: Any) -> str:
        if status == 529:  # overloaded
            return RETRYABLE
        return super().classify(status, body)


ADAPTER = AnthropicAdapter()
