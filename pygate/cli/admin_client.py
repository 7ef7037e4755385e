"""A small synchronous client for the admin listener, used by the CLI.

Plain urllib on purpose: CLI commands should start fast and not spin up an event loop.

Every request is made for one config file (`AdminTarget.of(loaded)`): it carries the
admin token of that config (admin.token, the first of admin.tokens, or the generated
token file, pygate/server/admin_token.py) and names the config and log store it expects
(pygate/server/admin_guard.py). A gateway that serves another config, because it holds this
config's admin port, refuses with 409 and the command fails with `WrongGateway`.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from pygate.config import LoadedConfig
from pygate.server.admin_token import AdminTokenError, client_token, token_file_path
from pygate.server.gateway_identity import expectation_headers


class AdminUnreachable(Exception):
    """Nothing answers on the admin address (the gateway is not running there)."""


class AdminError(Exception):
    """The admin listener answered with an error."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class WrongGateway(AdminError):
    """The gateway answering on the admin port serves another config or log store."""


class TokenUnusable(AdminError):
    """The config's admin token file cannot be read or trusted (a config problem)."""


def admin_url(listen: str, path: str) -> str:
    host, _, port = listen.rpartition(":")
    # A wildcard bind address is reachable on loopback.
    host = {"0.0.0.0": "127.0.0.1", "[::]": "[::1]"}.get(host, host)
    return f"http://{host}:{port}{path}"


@dataclass(frozen=True, slots=True)
class AdminTarget:
    """The admin listener of one config file, as the CLI reaches it."""

    listen: str
    token: str | None
    token_source: str  # for messages: where the token came from
    expect: dict[str, str]  # the identity headers

    @classmethod
    def of(cls, loaded: LoadedConfig) -> AdminTarget:
        """Raises TokenUnusable if the token file cannot be read or trusted."""
        admin = loaded.config.admin
        source = "admin.token" if admin.token else "admin.tokens" if admin.tokens else ""
        if admin.auth == "token" and not source:
            source = token_file_path(loaded)
        try:
            token = client_token(loaded)
        except AdminTokenError as exc:
            raise TokenUnusable(0, str(exc)) from exc
        return cls(
            listen=admin.listen,
            token=token,
            token_source=source,
            expect=expectation_headers(loaded.abspath, loaded.store.url),
        )

    def request(
        self,
        path: str,
        *,
        method: str | None = None,
        payload: Any = None,
        timeout_s: float = 10.0,
    ) -> Any:
        """GET (or POST `payload` as JSON) and return the decoded JSON answer."""
        headers = {"Accept": "application/json", **self.expect}
        data = None
        if payload is not None:
            data = json.dumps(payload, default=str).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        url = admin_url(self.listen, path)
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ConnectionRefusedError | FileNotFoundError):
                raise AdminUnreachable(f"nothing answers at {admin_url(self.listen, '')}") from exc
            raise AdminError(0, f"admin listener at {self.listen}: {exc.reason}") from exc
        except ConnectionRefusedError as exc:
            raise AdminUnreachable(f"nothing answers at {admin_url(self.listen, '')}") from exc

    def _error(self, exc: urllib.error.HTTPError) -> AdminError:
        body, message = _error_body(exc)
        if isinstance(body, dict) and body.get("error") == "wrong_gateway":
            return WrongGateway(exc.code, message, body)
        if exc.code == 401:
            if self.token is None:
                where = f" (none in {self.token_source}: has this gateway started yet?)"
            else:
                where = f" (from {self.token_source})"
            message = (
                f"the admin listener at {self.listen} refused the token{where}: "
                "is it the gateway of this config?"
            )
        return AdminError(exc.code, message, body)


def _error_body(exc: urllib.error.HTTPError) -> tuple[Any, str]:
    try:
        body = json.loads(exc.read())
    except (ValueError, OSError):
        return None, f"HTTP {exc.code} {exc.reason}"
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str):
                return body, body[key]
    return body, f"HTTP {exc.code} {exc.reason}"
