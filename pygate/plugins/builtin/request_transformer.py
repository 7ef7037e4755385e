"""request-transformer: change headers, query args and JSON body fields before proxying.

Like Kong's plugin of the same name: the operations remove, rename, replace, add and
append run in that order (see transform_ops.py for what each does):

    request-transformer:
      remove:  {headers: [X-Debug], querystring: [token], body: [password]}
      rename:  {headers: {X-Old: X-New}}
      replace: {querystring: {version: "2"}}
      add:     {headers: {X-Source: gateway}, body: {source: gateway}}
      append:  {headers: {X-Tag: edge}}

Body edits apply to JSON requests only (a JSON Content-Type with a JSON object or an
empty body); any other body is passed on untouched.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import msgspec

from pygate.plugins.builtin.transform_ops import (
    edit_headers,
    edit_json_body,
    edit_pairs,
    header_config_problems,
    section_edits,
)
from pygate.plugins.python import Plugin, Request, Response
from pygate.plugins.registry import register_python


class Names(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: list[str] = []
    querystring: list[str] = []
    body: list[str] = []


class Renames(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: dict[str, str] = {}
    querystring: dict[str, str] = {}
    body: dict[str, str] = {}


class Values(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: dict[str, str] = {}
    querystring: dict[str, str] = {}
    body: dict[str, Any] = {}  # any JSON value


class RequestTransformerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    remove: Names = msgspec.field(default_factory=Names)
    rename: Renames = msgspec.field(default_factory=Renames)
    replace: Values = msgspec.field(default_factory=Values)
    add: Values = msgspec.field(default_factory=Values)
    append: Values = msgspec.field(default_factory=Values)


class RequestEdits:
    """The config regrouped by what it edits, built once per route."""

    def __init__(self, config: RequestTransformerConfig) -> None:
        self.headers = section_edits(config, "headers")
        self.query = section_edits(config, "querystring")
        self.body = section_edits(config, "body")

    def query_string(self, query: str) -> str | None:
        """The new query string, or None when nothing changes (keeps the client's encoding)."""
        if not self.query:
            return None
        pairs = parse_qsl(query, keep_blank_values=True)
        edited = edit_pairs(pairs, self.query, case_insensitive=False)
        return None if edited == pairs else urlencode(edited)

    def json_body(self, content_type: str | None, body: bytes) -> bytes | None:
        """The new body, or None when it is left as is (not JSON, or nothing changes)."""
        return edit_json_body(content_type, body, self.body, empty_is_object=True)


class RequestTransformer(Plugin):
    Config = RequestTransformerConfig

    def __init__(self, config: RequestTransformerConfig) -> None:
        super().__init__(config)
        self.edits = RequestEdits(config)

    async def access(self, request: Request) -> Response | None:
        # The body first: its Content-Type is the client's, before header edits.
        body = self.edits.json_body(request.headers.get("content-type"), request.body)
        if body is not None:
            request.body = body
        headers = edit_headers(request.headers.items(), self.edits.headers)
        if headers is not None:
            request.headers = headers
        query = self.edits.query_string(request.query)
        if query is not None:
            request.query = query
        return None


PLUGIN = register_python(
    "request-transformer",
    RequestTransformer,
    check=lambda config, _context: header_config_problems(config),
)
