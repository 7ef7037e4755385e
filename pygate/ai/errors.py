"""Errors the AI gateway answers itself, in the caller's API's error format.

The body is the gateway's error (status, kind, message, request_id, as the core
answers) with the fields OpenAI's SDKs read (type, code, param); /v1/messages callers
get Anthropic's shape. Messages are scrubbed of every secret the gateway holds when the
error is made, so neither a body nor a pygate.ai_calls row nor a log line can carry one.
"""

from __future__ import annotations

from aiohttp import web

from pygate.ai.secrets import scrub


class AiError(Exception):
    def __init__(
        self,
        status: int,
        kind: str,
        message: str,
        headers: dict[str, str] | None = None,
        param: str | None = None,
    ) -> None:
        message = scrub(message)
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.message = message
        self.headers = headers or {}
        self.param = param  # the request field at fault ("messages[0].role"), as OpenAI names it


# Anthropic's error types, by status, for /v1/messages callers.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def openai_error(error: AiError, request_id: str) -> web.Response:
    """pygate's error shape, with the fields OpenAI's SDKs read (type, code, param)."""
    body = {
        "error": {
            "status": error.status,
            "kind": error.kind,
            "type": error.kind,
            "code": error.kind,
            "param": error.param,
            "message": error.message,
            "request_id": request_id,
        }
    }
    return web.json_response(body, status=error.status, headers=error.headers)


def anthropic_error(error: AiError, request_id: str) -> web.Response:
    kind = _ANTHROPIC_TYPES.get(error.status, "api_error")
    body = {
        "type": "error",
        "error": {"type": kind, "kind": error.kind, "message": error.message},
        "request_id": request_id,
    }
    return web.json_response(body, status=error.status, headers=error.headers)
