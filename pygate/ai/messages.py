"""POST /v1/messages: Anthropic's Messages API in front of any provider.

The request is turned into the unified (OpenAI) format, run like any chat call, and
the answer or the stream is rendered back as Anthropic messages and SSE events
(message_start, content_block_start/delta/stop, message_delta, message_stop), so
the Anthropic SDK works unchanged whichever provider answers.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from pygate.ai.chat import Renderer
from pygate.ai.sse import encode

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use"}


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content or () if b.get("type") == "text")


def to_unified(body: dict[str, Any]) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    if body.get("system"):
        messages.append({"role": "system", "content": _text(body["system"])})
    for message in body.get("messages", []):
        content = message.get("content")
        if message.get("role") == "assistant":
            out: dict[str, Any] = {"role": "assistant", "content": _text(content) or None}
            calls = [
                {
                    "id": b["id"],
                    "type": "function",
                    "function": {"name": b["name"], "arguments": orjson.dumps(b["input"]).decode()},
                }
                for b in (content if isinstance(content, list) else [])
                if b.get("type") == "tool_use"
            ]
            if calls:
                out["tool_calls"] = calls
            messages.append(out)
            continue
        blocks = content if isinstance(content, list) else []
        for block in blocks:
            if block.get("type") == "tool_result":
                result = block.get("content")
                text = result if isinstance(result, str) else _text(result)
                messages.append(
                    {"role": "tool", "tool_call_id": block["tool_use_id"], "content": text}
                )
        text = _text(content)
        if text or not blocks:
            messages.append({"role": "user", "content": text})
    unified: dict[str, Any] = {
        "model": body.get("model"),
        "messages": messages,
        "max_tokens": body.get("max_tokens"),
        "stream": bool(body.get("stream")),
    }
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            unified[name] = body[name]
    if body.get("stop_sequences"):
        unified["stop"] = body["stop_sequences"]
    if body.get("tools"):
        unified["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema") or {"type": "object"},
                },
            }
            for t in body["tools"]
        ]
        choice = (body.get("tool_choice") or {}).get("type")
        if choice in ("any", "none"):
            unified["tool_choice"] = "required" if choice == "any" else "none"
        elif choice == "tool":
            name = body["tool_choice"]["name"]
            unified["tool_choice"] = {"type": "function", "function": {"name": name}}
    return unified


class AnthropicRenderer(Renderer):
    def __init__(self, body: dict[str, Any]) -> None:
        super().__init__(body)
        self.model = body.get("model", "")
        self.id = f"msg_{uuid.uuid4().hex[:24]}"
        self.block: str | None = None  # "text" | "tool_use" while a block is open
        self.index = -1
        self.stop_reason = "end_turn"
        self.input_tokens = 0
        self.output_tokens = 0
        self.failed = False

    def completion(self, completion: dict[str, Any]) -> dict[str, Any]:
        choice = completion["choices"][0]
        message = choice["message"]
        content: list[dict[str, Any]] = []
        if message.get("content"):
            content.append({"type": "text", "text": message["content"]})
        for call in message.get("tool_calls") or ():
            arguments = call["function"].get("arguments") or "{}"
            content.append(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["function"]["name"],
                    "input": orjson.loads(arguments),
                }
            )
        usage = completion.get("usage") or {}
        return {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None,
            "usage": {
                "input_tokens": usage.get("prompt_tokens", 0),
                "output_tokens": usage.get("completion_tokens", 0),
            },
        }

    def _event(self, kind: str, payload: dict[str, Any]) -> bytes:
        return encode(orjson.dumps({"type": kind, **payload}), kind)

    def start(self) -> bytes:
        message = {
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return self._event("message_start", {"message": message})

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.index += 1
        self.block = kind
        return out + self._event(
            "content_block_start", {"index": self.index, "content_block": block}
        )

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        self.block = None
        return self._event("content_block_stop", {"index": self.index})

    def chunk(self, chunk: dict[str, Any]) -> bytes:
        out = b""
        if chunk.get("usage"):
            self.input_tokens = chunk["usage"].get("prompt_tokens", 0)
            self.output_tokens = chunk["usage"].get("completion_tokens", 0)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.block != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                text_delta = {"type": "text_delta", "text": delta["content"]}
                out += self._event(
                    "content_block_delta", {"index": self.index, "delta": text_delta}
                )
            for call in delta.get("tool_calls") or ():
                if call.get("id"):
                    name = call.get("function", {}).get("name", "")
                    block = {"type": "tool_use", "id": call["id"], "name": name, "input": {}}
                    out += self._open("tool_use", block)
                arguments = call.get("function", {}).get("arguments")
                if arguments:
                    json_delta = {"type": "input_json_delta", "partial_json": arguments}
                    out += self._event(
                        "content_block_delta", {"index": self.index, "delta": json_delta}
                    )
            if choice.get("finish_reason"):
                self.stop_reason = STOP.get(choice["finish_reason"], "end_turn")
        return out

    def usage(self, translator) -> bytes:
        # Usage arrives in the provider's own events (or an OpenAI usage chunk, already
        # seen by chunk()); it goes out in message_delta.
        if translator.usage is not None:
            self.input_tokens = translator.usage.prompt_tokens
            self.output_tokens = translator.usage.completion_tokens
        return b""

    def failure(self, message: str) -> bytes:
        self.failed = True
        return self._event("error", {"error": {"type": "api_error", "message": message}})

    def end(self) -> bytes:
        if self.failed:
            return b""
        delta = {"stop_reason": self.stop_reason, "stop_sequence": None}
        usage = {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens}
        return (
            self._close()
            + self._event("message_delta", {"delta": delta, "usage": usage})
            + self._event("message_stop", {})
        )
