"""A refusal by a built-in Python plugin, in the gateway's own error shape.

The core answers its refusals as {"error": {"status", "kind", "message", "request_id"}}
(core-rs/src/errors.rs); plugins that refuse a request (request-validation,
circuit-breaker) answer the same way, so clients parse one shape whoever refused.
"""

from __future__ import annotations

from pygate.plugins.python import Request, Response


def error_response(
    status: int,
    kind: str,
    message: str,
    request: Request,
    headers: list[tuple[str, str]] | None = None,
) -> Response:
    doc = {
        "error": {
            "status": status,
            "kind": kind,
            "message": message,
            "request_id": request.request_id,
        }
    }
    return Response(status, headers=headers, json=doc)
