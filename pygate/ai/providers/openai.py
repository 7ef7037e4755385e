"""OpenAI (and the OpenAI wire format that Mistral and compatible servers share).

Requests and answers are already in the unified format: the adapter sets the model,
authenticates, and forces `stream_options.include_usage` on streams so every streamed
call is counted from real usage.
"""

from __future__ import annotations

from typing import Any

import orjson

from pygate.ai.providers.base import (
    RATE_LIMITED,
    Adapter,
    ProviderRequest,
    StreamError,
    StreamTranslator,
    Usage,
    join_url,
)
from pygate.config.ai_schema import Provider


class OpenAIStream(StreamTranslator):
    def feed(self, event: str, data: str) -> list[dict[str, Any]]:
        if data.strip() == "[DONE]":
            return []
        chunk = orjson.loads(data)
        if "error" in chunk:
            raise StreamError(str(chunk["error"].get("message", chunk["error"])))
        usage = chunk.get("usage")
        if usage:
            self.usage = Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0))
        chunk["model"] = self.model
        chunk["id"] = self.id
        for position, choice in enumerate(chunk.get("choices") or ()):
            self.produced.add(choice.get("index", position), choice.get("delta") or {})
        return [chunk]


class OpenAIAdapter(Adapter):
    kind = "openai"
    supports_stream_options = True
    chat_path = "/v1/chat/completions"
    embeddings_path = "/v1/embeddings"
    # Request fields a provider of this family refuses; dropped before sending.
    drop_fields: tuple[str, ...] = ()

    def auth_headers(self, key: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {key}"} if key else {}

    def chat_url(self, provider: Provider, model: str) -> str:
        return join_url(provider.base_url, self.chat_path)

    def chat_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str, stream: bool
    ) -> ProviderRequest:
        payload = {k: v for k, v in body.items() if k not in self.drop_fields}
        payload["model"] = model
        payload["stream"] = stream
        if stream and self.supports_stream_options:
            payload["stream_options"] = {
                **(body.get("stream_options") or {}),
                "include_usage": True,
            }
        else:
            payload.pop("stream_options", None)
        headers = {"Content-Type": "application/json", **self.auth_headers(key)}
        return ProviderRequest(self.chat_url(provider, model), headers, payload)

    def chat_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        data["model"] = model
        return data

    def stream_translator(self, model: str) -> StreamTranslator:
        return OpenAIStream(model)

    def embeddings_url(self, provider: Provider, model: str) -> str:
        return join_url(provider.base_url, self.embeddings_path)

    def embeddings_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str
    ) -> ProviderRequest:
        payload = {**body, "model": model}
        headers = {"Content-Type": "application/json", **self.auth_headers(key)}
        return ProviderRequest(self.embeddings_url(provider, model), headers, payload)

    def embeddings_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        data["model"] = model
        return data

    def classify(self, status: int, body: Any) -> str:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("code") == "insufficient_quota":
            return RATE_LIMITED
        return super().classify(status, body)


ADAPTER = OpenAIAdapter()
