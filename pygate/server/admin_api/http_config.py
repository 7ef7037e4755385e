"""The whole document and the read-only endpoints.

GET  /config[?format=json]   the entities as the declarative YAML (or JSON), secrets
                             as fingerprints
POST /config                 replace every entity: YAML (application/yaml or
                             application/x-yaml) or JSON (application/json); validated
                             as a whole; a secret given as its fingerprint keeps the
                             secret the gateway has with that fingerprint
GET  /audit?limit=&entity=   the audit log, newest first (entity: "route" or
                             "route/items-api")
GET  /plugins                available plugins with the JSON schemas of their configs
GET  /openapi.json           this API's OpenAPI 3.1 document
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime

import orjson
import yaml
from aiohttp import web

from pygate.logstore import LogStoreError
from pygate.logstore.sql_store import sql_string
from pygate.plugins import get_plugin, plugin_names
from pygate.plugins.registry import NativePlugin
from pygate.server.admin_api.audit import AUDIT_TABLE
from pygate.server.admin_api.document import KINDS, Entities
from pygate.server.admin_api.errors import invalid_at, unavailable
from pygate.server.admin_api.http_common import api_errors, json_response, service, who
from pygate.server.admin_api.jsonschema import plugin_schema
from pygate.server.admin_api.openapi import openapi_document

YAML_TYPE = "application/yaml"
YAML_TYPES = ("application/yaml", "application/x-yaml")


def to_yaml(entities: Entities) -> str:
    return yaml.safe_dump(entities, sort_keys=False, allow_unicode=True)


@api_errors
async def export_config(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "yaml")
    if fmt not in ("yaml", "json"):
        raise invalid_at(("format",), f'expected "yaml" or "json", got "{fmt}"')
    entities = await service(request).shown()
    if fmt == "json":
        return json_response(entities)
    return web.Response(text=to_yaml(entities), content_type=YAML_TYPE)


def parse_document(raw: bytes, content_type: str) -> Entities:
    """An imported document: only the entity sections, each a list (or absent)."""
    try:
        if content_type not in YAML_TYPES:
            data = orjson.loads(raw)
        else:
            data = yaml.safe_load(raw.decode("utf-8")) if raw.strip() else {}
    except (orjson.JSONDecodeError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise invalid_at((), f"cannot parse the document: {str(exc).splitlines()[0]}") from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise invalid_at((), "expected a mapping with upstreams, consumers and routes")
    for key in data:
        if key not in KINDS:
            raise invalid_at(
                (str(key),),
                "only upstreams, consumers and routes can be imported; process settings "
                "come from the config file",
            )
    for section in KINDS:
        if not isinstance(data.get(section) or [], list):
            raise invalid_at((section,), "expected a list")
    return {section: list(data.get(section) or []) for section in KINDS}


@api_errors
async def import_config(request: web.Request) -> web.Response:
    document = parse_document(await request.read(), request.content_type)

    def mutate(entities: Entities) -> None:
        entities.update(document)

    svc = service(request)
    after = await svc.change(who(request), mutate)
    return json_response(svc.show(after))


_ENTITY_FILTER = re.compile(r"^(?P<kind>[a-z]+?)s?(?:/(?P<name>.+))?$")
_KIND_NAMES = {kind for kind, _ in KINDS.values()}


@api_errors
async def read_audit(request: web.Request) -> web.Response:
    svc = service(request)
    text = request.query.get("limit", "100")
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise invalid_at(("limit",), f"expected an integer from 1 to 10000, got {text!r}")
    where = []
    if "entity" in request.query:
        match = _ENTITY_FILTER.match(request.query["entity"])
        if match is None or match.group("kind") not in _KIND_NAMES:
            raise invalid_at(("entity",), 'expected a kind ("route") or kind/name ("route/api")')
        where.append(f"entity_kind = {sql_string(match.group('kind'))}")
        if match.group("name"):
            where.append(f"entity_name = {sql_string(match.group('name'))}")
    if svc.audit is None:
        raise unavailable("the gateway is still starting")
    await svc.audit.flush()  # what was just changed should be readable right away
    sql = (
        "SELECT toUnixTimestamp64Milli(ts) AS ts_ms, seq, change_id, actor, client, action, "
        f"entity_kind, entity_name, before, after, request FROM {AUDIT_TABLE}"
        + (f" WHERE {' AND '.join(where)}" if where else "")
        + f" ORDER BY ts DESC, seq DESC LIMIT {int(text)}"
    )
    loop = asyncio.get_running_loop()
    try:
        result = await loop.run_in_executor(None, svc.audit.store.query_rows, sql)
        pending = await loop.run_in_executor(None, svc.db.pending_audit_count)
    except LogStoreError as exc:
        raise unavailable(f"cannot read the audit log: {exc}") from exc
    entries = []
    for row in result.rows:
        entry = dict(zip(result.columns, row, strict=True))
        stamp = datetime.fromtimestamp(int(entry.pop("ts_ms")) / 1000, UTC)
        entry = {"ts": stamp.isoformat(timespec="milliseconds"), **entry}
        entry["seq"] = int(entry["seq"])
        for side in ("before", "after"):
            entry[side] = orjson.loads(entry[side]) if entry[side] else None
        entries.append(entry)
    return json_response({"data": entries, "pending": pending})


@api_errors
async def list_plugins(_request: web.Request) -> web.Response:
    data = []
    for name in plugin_names():
        plugin = get_plugin(name)
        native = isinstance(plugin, NativePlugin)
        phases = [] if native else sorted(getattr(plugin, "phases", ()))
        data.append({"name": name, "kind": "native" if native else "python",
                     "phases": phases, "schema": plugin_schema(name)})  # fmt: skip
    return json_response({"data": data})


async def openapi(_request: web.Request) -> web.Response:
    return json_response(openapi_document())


def register(app: web.Application) -> None:
    app.router.add_get("/config", export_config)
    app.router.add_post("/config", import_config)
    app.router.add_get("/audit", read_audit)
    app.router.add_get("/plugins", list_plugins)
    app.router.add_get("/openapi.json", openapi)
