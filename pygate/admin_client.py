"""A small synchronous client for the admin listener, used by the CLI.

Plain urllib on purpose: CLI commands should start fast and not spin up an event loop.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any


class AdminUnreachable(Exception):
    """Nothing answers on the admin address (the gateway is not running there)."""


class AdminError(Exception):
    """The admin listener answered with an error."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def admin_url(listen: str, path: str) -> str:
    host, _, port = listen.rpartition(":")
    # A wildcard bind address is reachable on loopback.
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return f"http://{host}:{port}{path}"


def admin_request(
    listen: str,
    path: str,
    *,
    token: str | None = None,
    payload: dict[str, Any] | None = None,
    timeout_s: float = 10.0,
) -> Any:
    """GET (or POST `payload` as JSON) and return the decoded JSON answer."""
    headers = {"Accept": "application/json"}
    data = None
    if payload is not None:
        data = json.dumps(payload).encode()
        headers["Content-Type"] = "application/json"
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(admin_url(listen, path), data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise AdminError(exc.code, _error_message(exc)) from exc
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, ConnectionRefusedError | FileNotFoundError):
            raise AdminUnreachable(f"nothing answers at {admin_url(listen, '')}") from exc
        raise AdminError(0, f"admin listener at {listen}: {exc.reason}") from exc
    except ConnectionRefusedError as exc:
        raise AdminUnreachable(f"nothing answers at {admin_url(listen, '')}") from exc


def _error_message(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read())
        if isinstance(body, dict) and isinstance(body.get("error"), str):
            return body["error"]
    except (ValueError, OSError):
        pass
    return f"HTTP {exc.code} {exc.reason}"
