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

import json
from typing import Any

import msgspec

from pygate.plugins.builtin.transform_ops import (
    JsonEdits,
    PairEdits,
    edit_json,
    edit_pairs,
    header_config_problems,
    is_json_type,
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


def json_body(content_type: str | None, body: bytes, edits: JsonEdits) -> bytes | None:
    """The edited body, or None when it is left as is (not a JSON object, or no change)."""
    if not edits or not is_json_type(content_type):
        return None
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    edited = edit_json(doc, edits)
    if edited == doc:
        return None
    return json.dumps(edited, ensure_ascii=False, separators=(",", ":")).encode()


class ResponseTransformer(Plugin):
    Config = ResponseTransformerConfig

    def __init__(self, config: ResponseTransformerConfig) -> None:
        super().__init__(config)
        c = config
        self.headers = PairEdits(
            c.remove.headers, c.rename.headers, c.replace.headers, c.add.headers, c.append.headers
        )
        self.json = JsonEdits(
            c.remove.json, c.rename.json, c.replace.json, c.add.json, c.append.json
        )

    async def response(self, request: Request, response: Response) -> None:
        # The body first: its Content-Type is the upstream's, before header edits.
        if response.body is not None:
            body = json_body(response.headers.get("content-type"), response.body, self.json)
            if body is not None:
                response.body = body
        if self.headers:
            pairs = response.headers.items()
            edited = edit_pairs(pairs, self.headers, case_insensitive=True)
            if edited != pairs:
                response.headers = edited


PLUGIN = register_python(
    "response-transformer",
    ResponseTransformer,
    check=lambda config, _context: header_config_problems(config),
)
