"""Request: what a plugin sees of (and may change in) the client's request.

Everything is read from the core's PluginCall on first use, and the dispatcher sends
back only what a plugin changed, so a plugin that looks at one header costs one header
lookup, not a copy of the request.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode

import msgspec

from pygate.plugins.python.headers import Headers

_UNSET: Any = object()


class Request:
    __slots__ = (
        "_call",
        "_path",
        "_query",
        "_uri_changed",
        "_args",
        "_args_seen",
        "_headers",
        "_body",
        "_body_changed",
        "_ctx",
        "upstream",
    )

    def __init__(self, call: Any) -> None:
        self._call = call
        self._path: str | None = None
        self._query = ""
        self._uri_changed = False
        self._args: dict[str, list[str]] | None = None
        self._args_seen: dict[str, list[str]] | None = None
        self._headers: Headers | None = None
        self._body: bytes = _UNSET
        self._body_changed = False
        self._ctx: dict[str, Any] | None = None
        # Name of a configured upstream to proxy to instead of the route's own.
        self.upstream: str | None = None

    # ----- read-only facts ----------------------------------------------------------
    @property
    def method(self) -> str:
        return self._call.method

    @property
    def client_ip(self) -> str:
        return self._call.client_ip

    @property
    def consumer(self) -> str | None:
        return self._call.consumer

    @property
    def route(self) -> str:
        return self._call.route

    @property
    def request_id(self) -> str:
        return self._call.request_id

    @property
    def ctx(self) -> dict[str, Any]:
        """Per request, shared by the route's plugins within one phase."""
        if self._ctx is None:
            self._ctx = {}
        return self._ctx

    @ctx.setter
    def ctx(self, value: dict[str, Any]) -> None:
        self._ctx = value

    # ----- path and query -----------------------------------------------------------
    def _split_uri(self) -> None:
        path, _, query = self._call.uri.partition("?")
        self._path, self._query = path, query

    @property
    def path(self) -> str:
        if self._path is None:
            self._split_uri()
        return self._path  # type: ignore[return-value]

    @path.setter
    def path(self, value: str) -> None:
        if not value.startswith("/"):
            raise ValueError(f"a path starts with '/', got {value!r}")
        if self._path is None:
            self._split_uri()
        self._path = value
        self._uri_changed = True

    @property
    def query(self) -> str:
        """The query string without "?" ("" when there is none)."""
        if self._args is not None:
            self._fold_args()
        if self._path is None:
            self._split_uri()
        return self._query

    @query.setter
    def query(self, value: str) -> None:
        if self._path is None:
            self._split_uri()
        self._query = value.removeprefix("?")
        self._args = self._args_seen = None
        self._uri_changed = True

    @property
    def args(self) -> dict[str, list[str]]:
        """Query arguments, name -> values; changes to this dict change the query."""
        if self._args is None:
            parsed = parse_qs(self.query, keep_blank_values=True)
            self._args = parsed
            self._args_seen = {name: list(values) for name, values in parsed.items()}
        return self._args

    @args.setter
    def args(self, value: dict[str, Any]) -> None:
        self.query = _encode_args(value)

    def get_arg(self, name: str, default: str | None = None) -> str | None:
        values = self.args.get(name)
        return values[0] if values else default

    def set_arg(self, name: str, value: str | list[str]) -> None:
        self.args[name] = [value] if isinstance(value, str) else list(value)

    def remove_arg(self, name: str) -> None:
        self.args.pop(name, None)

    def _fold_args(self) -> None:
        """Re-encode the query if the args dict was changed in place."""
        args = self._args
        if args is not None and args != self._args_seen:
            self._query = _encode_args(args)
            self._args_seen = {name: list(values) for name, values in args.items()}
            self._uri_changed = True

    @property
    def uri(self) -> str:
        query = self.query
        return f"{self.path}?{query}" if query else self.path

    # ----- headers and body ---------------------------------------------------------
    @property
    def headers(self) -> Headers:
        if self._headers is None:
            self._headers = Headers._wrap(self._call.headers)
        return self._headers

    @headers.setter
    def headers(self, value: Any) -> None:
        self._headers = Headers(value)
        self._headers.changed = True

    @property
    def body(self) -> bytes:
        if self._body is _UNSET:
            self._body = self._call.body
        return self._body

    @body.setter
    def body(self, value: bytes | str) -> None:
        self._body = value.encode() if isinstance(value, str) else bytes(value)
        self._body_changed = True

    def json(self) -> Any:
        """The body decoded as JSON (raises msgspec.DecodeError if it is not JSON)."""
        return msgspec.json.decode(self.body)

    def set_json(self, value: Any) -> None:
        self.body = msgspec.json.encode(value)
        self.headers["Content-Type"] = "application/json"

    # ----- for the dispatcher -------------------------------------------------------
    def _changes(self) -> tuple[str | None, list[tuple[str, str]] | None, bytes | None]:
        """(uri, headers, body) for continue_request, None where unchanged."""
        if self._args is not None:
            self._fold_args()
        uri = self.uri if self._uri_changed else None
        headers = self._headers
        new_headers = headers._pairs if headers is not None and headers.changed else None
        body = self._body if self._body_changed else None
        return uri, new_headers, body

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri} route={self.route} id={self.request_id}>"


def _encode_args(args: dict[str, Any]) -> str:
    return urlencode(
        {name: [values] if isinstance(values, str) else values for name, values in args.items()},
        doseq=True,
    )
