"""The OpenAPI 3.1 document served at GET /openapi.json.

Bodies are described by msgspec: the config's own Structs (mirrored, see
jsonschema.py) and the API's models (models.py) go through one
`msgspec.json.schema_components` call; this module only lays out the operations.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import msgspec

from pygate import __version__
from pygate.server.admin_api import models
from pygate.server.admin_api.document import KINDS
from pygate.server.admin_api.jsonschema import mirror

_REF = "#/components/schemas/{name}"
_JSON = "application/json"
_YAML = "application/yaml"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF.format(name=name)}


def _content(schema: dict[str, Any], media: str = _JSON) -> dict[str, Any]:
    return {media: {"schema": schema}}


def _answer(description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    answer: dict[str, Any] = {"description": description}
    if schema is not None:
        answer["content"] = _content(schema)
    return answer


_ERROR = _ref("Error")
_COMMON = {
    "401": _answer("missing or wrong admin token", _ERROR),
    "403": _answer(
        "forbidden_host or forbidden_origin: a Host, Origin or Sec-Fetch-Site "
        "that is not this listener's own (cross-site or DNS-rebound)",
        _ERROR,
    ),
    "409": _answer("wrong_gateway: Pygate-Expect-Config/-Store name another config", _ERROR),
    "415": _answer("a body that is not application/json (or YAML for POST /config)", _ERROR),
    "503": _answer("the admin state or the log store is unavailable", _ERROR),
}


def _operation(summary: str, responses: dict[str, Any], body: Any = None, **extra: Any):
    operation: dict[str, Any] = {"summary": summary, "responses": {**_COMMON, **responses}}
    if body is not None:
        operation["requestBody"] = body
    operation.update(extra)
    return operation


def _json_body(schema: dict[str, Any], required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": _content(schema)}


def _path_param(name: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "minLength": 1}
    if pattern:
        schema["pattern"] = pattern
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _entity_variants(components: dict[str, Any], name: str) -> None:
    """`<Name>Update` (PUT: the name comes from the URL) and `<Name>Patch` (merge patch)."""
    entity = components[name]
    update = copy.deepcopy(entity)
    update["required"] = [f for f in entity.get("required", []) if f != "name"]
    update["title"] = f"{name}Update"
    components[f"{name}Update"] = update
    patch = {"title": f"{name}Patch", "type": "object", "additionalProperties": False,
             "properties": {}}  # fmt: skip
    for field, schema in entity["properties"].items():
        schema = {k: v for k, v in schema.items() if k != "default"}
        patch["properties"][field] = {"anyOf": [schema, {"type": "null"}]}
    components[f"{name}Patch"] = patch


def _entity_paths(section: str, name: str) -> dict[str, Any]:
    kind = KINDS[section][0]
    entity = _ref(name)
    listing = {"type": "object", "properties": {"data": {"type": "array", "items": entity}},
               "required": ["data"]}  # fmt: skip
    invalid = _answer("the change is invalid: every problem with its field path", _ERROR)
    missing = _answer(f"no such {kind}", _ERROR)
    one = {"parameters": [_path_param("name")]}
    return {
        f"/{section}": {
            "get": _operation(f"list {section}", {"200": _answer(section, listing)}),
            "post": _operation(
                f"create a {kind}",
                {
                    "201": _answer("created", entity),
                    "400": invalid,
                    "409": _answer("the name is taken", _ERROR),
                },  # fmt: skip
                _json_body(entity),
            ),
        },
        f"/{section}/{{name}}": {
            **one,
            "get": _operation(f"one {kind}", {"200": _answer(kind, entity), "404": missing}),
            "put": _operation(
                f"create or replace a {kind}",
                {
                    "200": _answer("replaced", entity),
                    "201": _answer("created", entity),
                    "400": invalid,
                },  # fmt: skip
                _json_body(_ref(f"{name}Update")),
            ),
            "patch": _operation(
                f"change fields of a {kind} (JSON merge patch: null removes a field)",
                {"200": _answer("changed", entity), "400": invalid, "404": missing},
                _json_body(_ref(f"{name}Patch")),
            ),
            "delete": _operation(
                f"delete a {kind}",
                {
                    "204": _answer("deleted"),
                    "404": missing,
                    "409": _answer("still needed (by routes, or by the config)", _ERROR),
                },  # fmt: skip
            ),
        },
    }


def _sub_paths() -> dict[str, Any]:
    missing = _answer("no such consumer, route, key or plugin", _ERROR)
    invalid = _answer("invalid", _ERROR)
    refused = _answer("refused: it is in use or still needed", _ERROR)
    plugin_config = {"type": "object"}
    return {
        "/consumers/{name}/keys": {
            "parameters": [_path_param("name")],
            "post": _operation(
                "add a key (made up by the gateway when the body is empty)",
                {"201": _answer("added", _ref("CreatedKey")), "400": invalid, "404": missing,
                 "409": refused},  # fmt: skip
                _json_body(_ref("KeyBody"), required=False),
            ),
        },
        "/consumers/{name}/keys/{key}": {
            "parameters": [_path_param("name"), _path_param("key")],
            "delete": _operation("remove a key", {"204": _answer("removed"), "404": missing,
                                                  "409": refused}),  # fmt: skip
        },
        "/upstreams/{name}/health": {
            "parameters": [_path_param("name")],
            "get": _operation(
                "the health of the upstream's targets (probes and passive health)",
                {"200": _answer("health", {"type": "object"}),
                 "404": _answer("no such upstream", _ERROR)},
            ),
        },  # fmt: skip
        "/routes/{name}/plugins": {
            "parameters": [_path_param("name")],
            "get": _operation("the route's plugin configs by plugin name",
                              {"200": _answer("plugins", {"type": "object"}), "404": missing}),
        },
        "/routes/{name}/plugins/{plugin}": {
            "parameters": [_path_param("name"), _path_param("plugin")],
            "get": _operation("one plugin config", {"200": _answer("config", plugin_config),
                                                    "404": missing}),  # fmt: skip
            "put": _operation(
                "enable a plugin or replace its config (see GET /plugins for the schemas)",
                {"200": _answer("replaced", plugin_config),
                 "201": _answer("enabled", plugin_config), "400": invalid, "404": missing},
                _json_body(plugin_config, required=False),
            ),  # fmt: skip
            "delete": _operation("disable a plugin", {"204": _answer("disabled"),
                                                      "404": missing, "409": refused}),
        },
    }  # fmt: skip


def _other_paths() -> dict[str, Any]:
    document = _ref("EntityDocument")
    invalid = _answer("invalid: every problem with its field path", _ERROR)
    # YAML is described by the document's schema too: it is the same data.
    yaml_text = document
    fmt = {"name": "format", "in": "query", "required": False,
           "schema": {"enum": ["yaml", "json"], "default": "yaml"}}  # fmt: skip
    limit = {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 100},
    }
    entity = {"name": "entity", "in": "query", "required": False,
              "description": 'a kind ("route") or a kind and name ("route/items-api")',
              "schema": {"type": "string"}}  # fmt: skip
    return {
        "/config": {
            "get": _operation(
                "export the entities as the declarative config",
                {
                    "200": {
                        "description": "the entities",
                        "content": {_YAML: {"schema": yaml_text}, _JSON: {"schema": document}},
                    },
                    "400": invalid,
                },
                parameters=[fmt],
            ),  # fmt: skip
            "post": _operation(
                "replace every entity (YAML or JSON), validated as a whole, atomically",
                {"200": _answer("the entities now served", document), "400": invalid},
                {
                    "required": True,
                    "content": {_JSON: {"schema": document}, _YAML: {"schema": yaml_text}},
                },  # fmt: skip
            ),
        },
        "/audit": {
            "get": _operation(
                "the audit log, newest first",
                {"200": _answer("entries", _ref("AuditPage")), "400": invalid},
                parameters=[limit, entity],
            ),  # fmt: skip
        },
        "/plugins": {
            "get": _operation(
                "available plugins and their config schemas",
                {"200": _answer("plugins", _ref("PluginList"))},
            ),
        },
        "/openapi.json": {
            "get": _operation("this document", {"200": _answer("OpenAPI 3.1", {"type": "object"})}),
        },
    }


def _entity_document() -> type[msgspec.Struct]:
    fields = [(section, list[mirror(schema)], []) for section, (_, schema) in KINDS.items()]
    return msgspec.defstruct("EntityDocument", fields, kw_only=True, forbid_unknown_fields=True)


@functools.cache
def openapi_document() -> dict[str, Any]:
    types = [mirror(schema) for _, schema in KINDS.values()]
    types += [_entity_document(), models.Error, models.KeyBody, models.CreatedKey,
              models.PluginList, models.AuditPage]  # fmt: skip
    _, components = msgspec.json.schema_components(types, ref_template=_REF)
    # Module-path plugins ("package.module:Attribute") are not registered by name.
    components["RoutePlugins"]["additionalProperties"] = {"type": ["object", "null"]}
    paths: dict[str, Any] = {}
    for section, (_, schema) in KINDS.items():
        _entity_variants(components, schema.__name__)
        paths.update(_entity_paths(section, schema.__name__))
    paths.update(_sub_paths())
    paths.update(_other_paths())
    return {
        "openapi": "3.1.0",
        "info": {"title": "pygate admin API", "version": __version__},
        "components": {
            "schemas": components,
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"token": []}],
        "paths": paths,
    }
