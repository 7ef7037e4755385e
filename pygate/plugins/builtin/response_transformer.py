"""response-transformer: change the headers and JSON body fields of upstream responses.

Like Kong's plugin of the same name: remove, rename, replace, add and append, in that
order, on `headers` and on the top-level fields of a JSON body (`json`):

    response-transformer:
      remove:  {headers: [Server], json: [internal_id]}
      rename:  {json: {uid: user_id}}
      add:     {headers: {X-Served-By: pygate}, json: {api_version: 2}}

JSON edits apply to buffered JSON responses with an object body. A streamed response
(server-sent events, or no Content-Length) reaches the plugin without its body: only
its headers change.
"""

from __future__ import annotations

from typing import Any

import msgspec

from pygate.plugins.builtin.transform_ops import (
    edit_headers,
    edit_json_body,
    header_config_problems,
    section_edits,
)
from pygate.plugins.python import Plugin, Request, Response
from pygate.plugins.registry import register_python


class Names(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: list[str] = []
    json: list[str] = []


class Renames(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: dict[str, str] = {}
    json: dict[str, str] = {}


class Values(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    headers: dict[str, str] = {}
    json: dict[str, Any] = {}  # any JSON value


class ResponseTransformerConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    remove: Names = msgspec.field(default_factory=Names)
    rename: Renames = msgspec.field(default_factory=Renames)
    replace: Values = msgspec.field(default_factory=Values)
    add: Values = msgspec.field(default_factory=Values)
    append: Values = msgspec.field(default_factory=Values)


class ResponseTransformer(Plugin):
    Config = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig) -> None:
        super().__init__(config)
        self.headers = section_edits(config, "headers")
        self.json = section_edits(config, "json")

    async def response(self, request: Request, response: Response) -> None:
        # The body first: its Content-Type is the upstream's, before header edits.
        if response.body is not None:
            body = edit_json_body(
                response.headers.get("content-type"),
                response.body,
                self.json,
                empty_is_object=False,
            )
            if body is not None:
                response.body = body
        headers = edit_headers(response.headers.items(), self.headers)
        if headers is not None:
            response.headers = headers


PLUGIN = register_python(
    "response-transformer",
    ResponseTransformer,
    check=lambda config, _context: header_config_problems(config),
)
