"""Google Gemini (generateContent / streamGenerateContent?alt=sse / batchEmbedContents).

Messages become `contents` with roles user/model, system messages
`systemInstruction`, tools `functionDeclarations`; function calls come back as
`functionCall` parts (Gemini gives them no id, so ids are made up here) and tool
results go out as `functionResponse` parts named after the call they answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from pygate.ai.providers.base import (
    AUTH_REFUSED,
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

FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}


def to_gemini(body: dict[str, Any]) -> dict[str, Any]:
    system: list[str] = []
    contents: list[dict[str, Any]] = []
    call_names: dict[str, str] = {}
    for message in body.get("messages", []):
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
        elif role == "assistant":
            parts: list[dict[str, Any]] = []
            if text := text_of(message.get("content")):
                parts.append({"text": text})
            for call in message.get("tool_calls") or ():
                function = call.get("function", {})
                call_names[call.get("id", "")] = function.get("name", "")
                args = parsed_arguments(function.get("arguments"))
                parts.append({"functionCall": {"name": function.get("name"), "args": args}})
            contents.append({"role": "model", "parts": parts})
        elif role == "tool":
            name = call_names.get(message.get("tool_call_id", ""), "tool")
            response = {"name": name, "response": {"content": text_of(message.get("content"))}}
            contents.append({"role": "user", "parts": [{"functionResponse": response}]})
        else:
            contents.append({"role": "user", "parts": [{"text": text_of(message.get("content"))}]})
    payload: dict[str, Any] = {"contents": contents}
    if system:
        payload["systemInstruction"] = {"parts": [{"text": "\n\n".join(system)}]}
    config: dict[str, Any] = {}
    for ours, theirs in (("temperature", "temperature"), ("top_p", "topP")):
        if body.get(ours) is not None:
            config[theirs] = body[ours]
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens")
    if max_tokens:
        config["maxOutputTokens"] = max_tokens
    if stop := body.get("stop"):
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    if config:
        payload["generationConfig"] = config
    if body.get("tools"):
        declarations = [
            {
                k: v
                for k, v in tool["function"].items()
                if k in ("name", "description", "parameters")
            }
            for tool in body["tools"]
            if tool.get("type") == "function"
        ]
        payload["tools"] = [{"functionDeclarations": declarations}]
        choice = body.get("tool_choice")
        modes = {"auto": "AUTO", "required": "ANY", "none": "NONE"}
        if isinstance(choice, str) and choice in modes:
            payload["toolConfig"] = {"functionCallingConfig": {"mode": modes[choice]}}
        elif isinstance(choice, dict):
            names = [choice["function"]["name"]]
            config = {"mode": "ANY", "allowedFunctionNames": names}
            payload["toolConfig"] = {"functionCallingConfig": config}
    return payload


def _usage(data: dict[str, Any]) -> Usage | None:
    meta = data.get("usageMetadata")
    if not meta:
        return None
    return Usage(meta.get("promptTokenCount", 0), meta.get("candidatesTokenCount", 0))


def _parts(data: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
    candidates = data.get("candidates") or [{}]
    candidate = candidates[0]
    return candidate.get("content", {}).get("parts", []), candidate.get("finishReason")


def _is_bad_key(body: Any) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return False
    details = error.get("details") if isinstance(error.get("details"), list) else []
    reasons = {d.get("reason") for d in details if isinstance(d, dict)}
    return "API_KEY_INVALID" in reasons or "API key not valid" in str(error.get("message"))


class GeminiStream(StreamTranslator):
    def __init__(self, model: str) -> None:
        super().__init__(model)
        self._calls = 0
        self._started = False

    def feed(self, event: str, data: str) -> list[dict[str, Any]]:
        payload = orjson.loads(data)
        if "error" in payload:
            raise StreamError(str(payload["error"].get("message", payload["error"])))
        self.usage = _usage(payload) or self.usage
        parts, reason = _parts(payload)
        chunks = []
        if not self._started:
            self._started = True
            chunks.append(self.chunk({"role": "assistant", "content": ""}))
        for part in parts:
            if "text" in part:
                chunks.append(self.chunk({"content": part["text"]}))
            elif "functionCall" in part:
                call = part["functionCall"]
                chunks.append(
                    self.chunk(
                        {
                            "tool_calls": [
                                {
                                    "index": self._calls,
                                    "id": f"call_{self._calls}_{self.id[-8:]}",
                                    "type": "function",
                                    "function": {
                                        "name": call["name"],
                                        "arguments": orjson.dumps(call.get("args", {})).decode(),
                                    },
                                }
                            ]
                        }
                    )
                )
                self._calls += 1
        if reason:
            finish = "tool_calls" if self._calls else FINISH.get(reason, "stop")
            chunks.append(self.chunk({}, finish))
        return chunks


class GeminiAdapter(Adapter):
    kind = "gemini"

    def _url(self, provider: Provider, model: str, method: str) -> str:
        return join_url(provider.base_url, f"/v1beta/models/{quote(model, safe='')}:{method}")

    def chat_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str, stream: bool
    ) -> ProviderRequest:
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        headers = {"Content-Type": "application/json", "x-goog-api-key": key}
        return ProviderRequest(self._url(provider, model, method), headers, to_gemini(body))

    def chat_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        parts, reason = _parts(data)
        text = "".join(p["text"] for p in parts if "text" in p)
        calls = [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {
                    "name": p["functionCall"]["name"],
                    "arguments": orjson.dumps(p["functionCall"].get("args", {})).decode(),
                },
            }
            for i, p in enumerate(p for p in parts if "functionCall" in p)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = calls
        finish = "tool_calls" if calls else FINISH.get(reason or "STOP", "stop")
        return completion(model, message, finish, _usage(data) or Usage())

    def stream_translator(self, model: str) -> StreamTranslator:
        return GeminiStream(model)

    def classify(self, status: int, body: Any) -> str:
        # Google answers a bad key with 400 INVALID_ARGUMENT, reason API_KEY_INVALID.
        if status == 400 and _is_bad_key(body):
            return AUTH_REFUSED
        return super().classify(status, body)

    def embeddings_request(
        self, provider: Provider, model: str, body: dict[str, Any], key: str
    ) -> ProviderRequest:
        inputs = body.get("input")
        texts = [inputs] if isinstance(inputs, str) else list(inputs or [])
        requests = [
            {"model": f"models/{model}", "content": {"parts": [{"text": t}]}} for t in texts
        ]
        headers = {"Content-Type": "application/json", "x-goog-api-key": key}
        url = self._url(provider, model, "batchEmbedContents")
        return ProviderRequest(url, headers, {"requests": requests})

    def embeddings_response(self, data: dict[str, Any], model: str) -> dict[str, Any]:
        vectors = [e["values"] for e in data.get("embeddings", [])]
        return {
            "object": "list",
            "model": model,
            "data": [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ],
            "usage": {"prompt_tokens": 0, "total_tokens": 0},
        }


ADAPTER = GeminiAdapter()
