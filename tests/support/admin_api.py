"""A client for the admin API of a test gateway (plain urllib, JSON in and out)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from .gateway import Gateway

TOKEN = "admin-secret"
OPS_TOKEN = "ops-secret"
# admin.token (actor "admin") and a named token (actor "ops"), for the audit tests.
ADMIN_SETTINGS = {"token": TOKEN, "tokens": [{"name": "ops", "token": OPS_TOKEN}]}


class AdminApi:
    def __init__(self, gateway: Gateway, token: str | None = "gateway") -> None:
        """`token`: "gateway" (the one the gateway wants), None (none), or a token."""
        self.gateway = gateway
        self._token = token

    @property
    def token(self) -> str | None:
        return self.gateway.admin_token if self._token == "gateway" else self._token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: bytes | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, Any]:
        """Returns (status, decoded JSON, or text for non-JSON answers, or None)."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.gateway.admin_url(path), data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, _decode(response.read(), response.headers)
        except urllib.error.HTTPError as err:
            return err.code, _decode(err.read(), err.headers)

    def get(self, path: str) -> tuple[int, Any]:
        return self.call("GET", path)

    def post(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call("POST", path, body)

    def put(self, path: str, body: Any = None) -> tuple[int, Any]:
        return self.call("PUT", path, body)

    def patch(self, path: str, body: Any) -> tuple[int, Any]:
        return self.call("PATCH", path, body)

    def delete(self, path: str) -> tuple[int, Any]:
        return self.call("DELETE", path)

    def ok(self, method: str, path: str, body: Any = None, status: int = 200) -> Any:
        got, answer = self.call(method, path, body)
        assert got == status, f"{method} {path}: {got} {answer}"
        return answer

    def audit(self, query: str = "") -> list[dict[str, Any]]:
        return self.ok("GET", f"/audit?limit=1000{query}")["data"]


def _decode(raw: bytes, headers: Any) -> Any:
    if not raw:
        return None
    if headers.get_content_type() == "application/json":
        return json.loads(raw)
    return raw.decode()


def problem_paths(answer: dict[str, Any]) -> list[str]:
    assert answer["error"] == "invalid", answer
    return [p["path"] for p in answer["problems"]]
