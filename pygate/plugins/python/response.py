"""Response: a direct answer from an access plugin, or the upstream's response in the
response phase (where only changed fields are sent back to the core)."""

from __future__ import annotations

from typing import Any

import msgspec

from pygate.plugins.python.headers import Headers, HeadersInit

_UNSET: Any = object()


class StreamedBodyError(RuntimeError):
    """The body of a streamed response passes through the core and cannot be changed."""


class Response:
    __slots__ = ("status", "_headers", "_body", "_body_changed", "_call", "_streamed")

    def __init__(
        self,
        status: int = 200,
        headers: HeadersInit = None,
        body: bytes | str = b"",
        *,
        json: Any = _UNSET,
    ) -> None:
        self.status = status
        self._headers: Headers | None = Headers(headers)
        self._call: Any = None
        self._streamed = False
        self._body_changed = False
        if json is not _UNSET:
            self._body: bytes | None = msgspec.json.encode(json)
            self._headers.setdefault("Content-Type", "application/json")
        else:
            self._body = body.encode() if isinstance(body, str) else bytes(body)

    @classmethod
    def _from_call(cls, call: Any) -> Response:
        """The upstream response of a response-phase call; read lazily."""
        response = cls.__new__(cls)
        response.status = call.status
        response._headers = None
        response._body = _UNSET
        response._body_changed = False
        response._call = call
        response._streamed = False
        return response

    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers._wrap(self._call.response_headers)
        return self._headers

    @headers.setter
    def headers(self, value: HeadersInit) -> None:
        self._headers = Headers(value)
        self._headers.changed = True

    @property
    def body(self) -> bytes | None:
        """The body; None in the response phase when the upstream response is streamed.

        A response that has no body by definition (to HEAD; 1xx, 204, 304) shows b"", and
        keeps the upstream's Content-Length (for HEAD, the length a GET gets); setting a
        body on it makes that length unknown, so the core drops the header.
        """
        if self._body is _UNSET:
            self._body = self._call.response_body
            self._streamed = self._body is None
        return self._body

    @body.setter
    def body(self, value: bytes | str) -> None:
        if self._body is _UNSET:
            self._body = self._call.response_body
            self._streamed = self._body is None
        if self._streamed:
            raise StreamedBodyError("the upstream response is streamed; its body cannot be changed")
        self._body = value.encode() if isinstance(value, str) else bytes(value)
        self._body_changed = True

    def json(self) -> Any:
        body = self.body
        if body is None:
            raise StreamedBodyError("the upstream response is streamed; it has no body here")
        return msgspec.json.decode(body)

    def set_json(self, value: Any) -> None:
        self.body = msgspec.json.encode(value)
        self.headers["Content-Type"] = "application/json"

    # ----- for the dispatcher -------------------------------------------------------
    def _answer(self) -> tuple[int, list[tuple[str, str]], bytes]:
        """(status, headers, body) for a direct answer."""
        headers = self.headers._pairs
        body = self._body if isinstance(self._body, bytes) else b""
        return self.status, headers, body

    def _changes(self) -> tuple[int | None, list[tuple[str, str]] | None, bytes | None]:
        """(status, headers, body) for continue_response, None where unchanged."""
        status = self.status if self.status != self._call.status else None
        headers = self._headers
        new_headers = headers._pairs if headers is not None and headers.changed else None
        body = self._body if self._body_changed else None
        return status, new_headers, body

    def __repr__(self) -> str:
        return f"<Response {self.status}>"
