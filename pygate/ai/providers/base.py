"""What a provider adapter is, and the pieces every adapter shares.

The unified format is OpenAI's: requests arrive as OpenAI chat/embeddings bodies and
answers leave as OpenAI objects (chat.completion, chat.completion.chunk, list of
embeddings). An adapter translates the request for its provider, and the provider's
answer, streamed events and errors back. Adding a provider = one module
`pygate/ai/providers/<kind>.py` defining `ADAPTER` (an `Adapter` subclass instance), and
its declaration (kind, needs) in pygate/config/providers.py.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import orjson

from pygate.config.ai_schema import Provider


@dataclass(slots=True)
class ProviderRequest:
    url: str
    headers: dict[str, str]
    json: dict[str, Any]


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Unsupported(Exception):
    """The provider has no such operation (e.g. embeddings on Anthropic)."""


class Untranslatable(Exception):
    """The request cannot be put in this provider's format: the caller's mistake (400)."""


def parsed_arguments(arguments: str | None) -> Any:
    """A tool call's JSON arguments as the object Anthropic and Gemini want."""
    text = arguments or "{}"
    try:
        return orjson.loads(text) if text.strip() else {}
    except orjson.JSONDecodeError as exc:
        raise Untranslatable(f"tool call arguments must be JSON for this provider: {exc}") from None


# How a failed provider answer is handled by the engine.
RATE_LIMITED = "rate_limited"  # 429 / quota: rotate the key, then fall back
AUTH_REFUSED = "auth_refused"  # 401/403: the provider refused our key: rotate, fall back
RETRYABLE = "retryable"  # 5xx, 408, overloaded: retry with backoff, then fall back
FATAL = "fatal"  # the request itself is wrong: return the error to the caller


@dataclass(slots=True)
class Produced:
    """What a model produced (text and tool calls, per choice), kept so that its tokens
    can be counted when the provider sends no usage. Streamed pieces are joined before
    counting: a BPE count of the whole is not the sum of the pieces' counts."""

    content: dict[int, list[str]] = field(default_factory=dict)  # choice -> text pieces
    calls: dict[tuple[int, int], list[str]] = field(default_factory=dict)  # -> [name, args..]

    def add(self, choice: int, delta: dict[str, Any]) -> None:
        """One streamed delta (or a whole answer's message) of choice `choice`."""
        choice = choice if isinstance(choice, int) else 0  # a provider's odd index: one bin
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.content.setdefault(choice, []).append(content)
        for position, call in enumerate(delta.get("tool_calls") or ()):
            function = call.get("function") or {}
            index = call.get("index", position)
            parts = self.calls.setdefault((choice, index if isinstance(index, int) else 0), [""])
            parts[0] = parts[0] or function.get("name") or ""
            if function.get("arguments"):
                parts.append(function["arguments"])

    @classmethod
    def of_completion(cls, completion: dict[str, Any]) -> Produced:
        produced = cls()
        for position, choice in enumerate(completion.get("choices") or ()):
            produced.add(choice.get("index", position), choice.get("message") or {})
        return produced

    def choices(self) -> list[tuple[str, list[tuple[str, str]]]]:
        """(text, [(tool name, arguments)]) of each choice."""
        indexes = sorted(set(self.content) | {choice for choice, _ in self.calls})
        return [
            (
                "".join(self.content.get(i, ())),
                [(p[0], "".join(p[1:])) for (c, _), p in sorted(self.calls.items()) if c == i],
            )
            for i in indexes
        ]

    @property
    def chars(self) -> int:
        """Characters of the text and the arguments, for the estimate."""
        text = sum(len(piece) for pieces in self.content.values() for piece in pieces)
        return text + sum(len(piece) for parts in self.calls.values() for piece in parts[1:])


@dataclass(slots=True)
class StreamTranslator:
    """Turns one provider stream's SSE events into OpenAI chunks; keeps the usage."""

    model: str
    id: str = field(default_factory=lambda: f"chatcmpl-{uuid.uuid4().hex[:24]}")
    created: int = field(default_factory=lambda: int(time.time()))
    usage: Usage | None = None
    produced: Produced = field(default_factory=Produced)  # counted when there is no usage

    @property
    def text_chars(self) -> int:
        return self.produced.chars

    def feed(self, event: str, data: str) -> list[dict[str, Any]]:
        raise NotImplementedError

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        self.produced.add(0, delta)
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }


class StreamError(Exception):
    """The provider reported an error inside a stream."""


class Adapter:
    kind: str = ""
    # Whether streamed answers carry usage only when asked (stream_options).
    supports_stream_options: bool = False

    def chat_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str, stream: bool
    ) -> ProviderRequest:
        raise NotImplementedError

    def chat_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        raise NotImplementedError

    def stream_translator(self, model: str) -> StreamTranslator:
        raise NotImplementedError

    def embeddings_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str
    ) -> ProviderRequest:
        raise Unsupported(f"{self.kind} has no embeddings API")

    def embeddings_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        raise Unsupported(f"{self.kind} has no embeddings API")

    def classify(self, status: int, body: Any) -> str:
        if status == 429:
            return RATE_LIMITED
        if status in (408, 409) or status >= 500:
            return RETRYABLE
        if status in (401, 403):
            return AUTH_REFUSED  # a revoked key: another key of the pool may work
        return FATAL

    def error_message(self, body: Any) -> str:
        """The provider's error text, whole (the engine scrubs it, then cuts it short)."""
        if isinstance(body, dict):
            error = body.get("error", body)
            if isinstance(error, dict) and error.get("message"):
                return str(error["message"])
            if isinstance(error, str):
                return error
        return str(body)


def completion(
    model: str,
    message: dict[str, Any],
    finish_reason: str | None,
    usage: Usage,
) -> dict[str, Any]:
    """An OpenAI chat.completion object."""
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        },
    }


def text_of(content: Any) -> str:
    """The text of an OpenAI message content (a string or a list of parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "".join(
        part.get("text", "")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    )


def join_url(base: str, path: str) -> str:
    return base.rstrip("/") + path
