"""Consumer keys and route plugin configs, as sub-resources of their entity.

POST   /consumers/{name}/keys          {"key": "..."} or no body (a key is made up);
                                       201 {"fingerprint": ...}, with "key" only for a
                                       made-up key (shown this once); 409 if any
                                       consumer has it
DELETE /consumers/{name}/keys/{key}    the key or its fingerprint; 204; 404; 409 for
                                       the last key
GET    /routes/{name}/plugins          {"plugin-name": config, ...}
GET    /routes/{name}/plugins/{plugin} the plugin's config; 404 if not enabled
PUT    /routes/{name}/plugins/{plugin} enable or replace (201 / 200), validated by
                                       the plugin's schema and checks
DELETE /routes/{name}/plugins/{plugin} 204; 404
"""

from __future__ import annotations

import secrets
from typing import Any

from aiohttp import web

from pygate.server.admin_api.document import Entities, find, index_of
from pygate.server.admin_api.errors import conflict, invalid_at, not_found
from pygate.server.admin_api.http_common import (
    api_errors,
    json_response,
    no_content,
    read_json,
    service,
    who,
)


def _entity(entities: Entities, section: str, kind: str, name: str) -> tuple[int, dict]:
    index = index_of(entities, section, name)
    if index is None:
        raise not_found(f'no {kind} named "{name}"')
    return index, entities[section][index]


@api_errors
async def add_key(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    body = await read_json(request, optional=True)
    made_up = body is None or (isinstance(body, dict) and "key" not in body)
    if body is None:
        body = {}
    if not isinstance(body, dict) or set(body) - {"key"}:
        raise invalid_at((), 'expected a JSON object {"key": "..."} or no body')
    key = body.get("key", secrets.token_urlsafe(24))
    if not isinstance(key, str) or not key:
        raise invalid_at(("key",), "expected a non-empty string")
    svc = service(request)

    def mutate(entities: Entities) -> None:
        index, consumer = _entity(entities, "consumers", "consumer", name)
        for other in entities["consumers"]:
            if any(svc.fingerprints.matches(k, key) for k in other.get("keys", [])):
                who_has = "this consumer" if other is consumer else "another consumer"
                raise conflict(f"the key is already assigned to {who_has}")
        consumer["keys"] = [*consumer.get("keys", []), key]

    await svc.change(who(request), mutate)
    created = {"fingerprint": svc.fingerprints.of(key)}
    return json_response({"key": key, **created} if made_up else created, 201)


@api_errors
async def delete_key(request: web.Request) -> web.Response:
    name, key = request.match_info["name"], request.match_info["key"]
    svc = service(request)

    def mutate(entities: Entities) -> None:
        _, consumer = _entity(entities, "consumers", "consumer", name)
        keys = consumer.get("keys", [])
        kept = [k for k in keys if not svc.fingerprints.matches(k, key)]
        if len(kept) == len(keys):
            raise not_found(f'consumer "{name}" has no such key')
        if not kept:
            raise conflict("a consumer needs at least one key: add another one first")
        consumer["keys"] = kept

    await svc.change(who(request), mutate, refusal=409)
    return no_content()


def _plugins(route: dict[str, Any]) -> dict[str, Any]:
    return {name: {} if config is None else config for name, config in
            (route.get("plugins") or {}).items()}  # fmt: skip


@api_errors
async def list_plugins(request: web.Request) -> web.Response:
    entities = await service(request).shown()
    _, route = _entity(entities, "routes", "route", request.match_info["name"])
    return json_response(_plugins(route))


@api_errors
async def get_plugin(request: web.Request) -> web.Response:
    entities = await service(request).shown()
    name, plugin = request.match_info["name"], request.match_info["plugin"]
    _, route = _entity(entities, "routes", "route", name)
    plugins = _plugins(route)
    if plugin not in plugins:
        raise not_found(f'plugin "{plugin}" is not enabled on route "{name}"')
    return json_response(plugins[plugin])


@api_errors
async def put_plugin(request: web.Request) -> web.Response:
    name, plugin = request.match_info["name"], request.match_info["plugin"]
    config = await read_json(request, optional=True)
    created = False

    def mutate(entities: Entities) -> None:
        nonlocal created
        _, route = _entity(entities, "routes", "route", name)
        plugins = dict(route.get("plugins") or {})
        created = plugin not in plugins
        plugins[plugin] = {} if config is None else config
        route["plugins"] = plugins

    svc = service(request)
    after = await svc.change(who(request), mutate)
    route = find(svc.show(after), "routes", name) or {}
    return json_response(_plugins(route).get(plugin, {}), 201 if created else 200)


@api_errors
async def delete_plugin(request: web.Request) -> web.Response:
    name, plugin = request.match_info["name"], request.match_info["plugin"]

    def mutate(entities: Entities) -> None:
        _, route = _entity(entities, "routes", "route", name)
        plugins = dict(route.get("plugins") or {})
        if plugin not in plugins:
            raise not_found(f'plugin "{plugin}" is not enabled on route "{name}"')
        del plugins[plugin]
        route["plugins"] = plugins

    await service(request).change(who(request), mutate, refusal=409)
    return no_content()


def register(app: web.Application) -> None:
    app.router.add_post("/consumers/{name}/keys", add_key)
    app.router.add_delete("/consumers/{name}/keys/{key}", delete_key)
    app.router.add_get("/routes/{name}/plugins", list_plugins)
    app.router.add_get("/routes/{name}/plugins/{plugin}", get_plugin)
    app.router.add_put("/routes/{name}/plugins/{plugin}", put_plugin)
    app.router.add_delete("/routes/{name}/plugins/{plugin}", delete_plugin)
