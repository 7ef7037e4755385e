"""CRUD over upstreams, consumers and routes (Kong's layout).

    GET    /{section}              {"data": [entity, ...]}
    POST   /{section}              create; 201 + entity; 409 if the name is taken
    GET    /{section}/{name}       entity; 404
    PUT    /{section}/{name}       create (201) or replace (200); the body's name, if
                                   given, must be the URL's
    PATCH  /{section}/{name}       JSON merge patch (null removes a field); 404
    DELETE /{section}/{name}       204; 409 if something still needs it

An entity is what the YAML file holds under its section, as JSON. Secrets (keys,
passwords, jwt secrets) are shown as fingerprints; a write may give a fingerprint to
keep the secret that has it (pygate/server/admin_api/secrets.py).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from pygate.server.admin_api.document import KINDS, Entities, find, index_of, merge_patch
from pygate.server.admin_api.errors import conflict, invalid_at, not_found
from pygate.server.admin_api.http_common import (
    api_errors,
    json_response,
    no_content,
    read_object,
    service,
    who,
)


def _kind(section: str) -> str:
    return KINDS[section][0]


def _require(entities: Entities, section: str, name: str) -> dict[str, Any]:
    entity = find(entities, section, name)
    if entity is None:
        raise not_found(f'no {_kind(section)} named "{name}"')
    return entity


def _check_name(body: dict[str, Any], section: str, index: int, name: str) -> None:
    if "name" in body and body["name"] != name:
        raise invalid_at(
            (section, index, "name"),
            f'expected "{name}" (the name in the URL); renaming is '
            "not supported: create a new one and delete this one",
        )


def handlers(section: str) -> dict[str, Any]:
    kind = _kind(section)

    @api_errors
    async def list_all(request: web.Request) -> web.Response:
        return json_response({"data": (await service(request).shown())[section]})

    @api_errors
    async def create(request: web.Request) -> web.Response:
        body = await read_object(request)
        name = body.get("name")

        def mutate(entities: Entities) -> None:
            if isinstance(name, str) and find(entities, section, name) is not None:
                raise conflict(f'a {kind} named "{name}" already exists')
            entities[section].append(body)

        svc = service(request)
        after = await svc.change(who(request), mutate)
        return json_response(find(svc.show(after), section, name), 201)

    @api_errors
    async def get_one(request: web.Request) -> web.Response:
        entities = await service(request).shown()
        return json_response(_require(entities, section, request.match_info["name"]))

    @api_errors
    async def put(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        body = await read_object(request)
        created = False

        def mutate(entities: Entities) -> None:
            nonlocal created
            index = index_of(entities, section, name)
            created = index is None
            _check_name(body, section, len(entities[section]) if created else index, name)
            entity = {"name": name, **{k: v for k, v in body.items() if k != "name"}}
            if index is None:
                entities[section].append(entity)
            else:
                entities[section][index] = entity

        svc = service(request)
        after = await svc.change(who(request), mutate)
        return json_response(find(svc.show(after), section, name), 201 if created else 200)

    @api_errors
    async def patch(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        patch_body = await read_object(request)

        def mutate(entities: Entities) -> None:
            index = index_of(entities, section, name)
            if index is None:
                raise not_found(f'no {kind} named "{name}"')
            _check_name(patch_body, section, index, name)
            entities[section][index] = {**merge_patch(entities[section][index], patch_body),
                                        "name": name}  # fmt: skip

        svc = service(request)
        after = await svc.change(who(request), mutate)
        return json_response(find(svc.show(after), section, name))

    @api_errors
    async def delete(request: web.Request) -> web.Response:
        name = request.match_info["name"]

        def mutate(entities: Entities) -> None:
            _require(entities, section, name)
            if section == "upstreams":
                users = [r.get("name") for r in entities["routes"] if r.get("upstream") == name]
                if users:
                    names = ", ".join(f'"{u}"' for u in users)
                    raise conflict(f'upstream "{name}" is used by routes {names}')
            entities[section] = [e for e in entities[section] if e.get("name") != name]

        await service(request).change(who(request), mutate, refusal=409)
        return no_content()

    return {"list": list_all, "create": create, "get": get_one, "put": put,
            "patch": patch, "delete": delete}  # fmt: skip


def register(app: web.Application) -> None:
    for section in KINDS:
        h = handlers(section)
        app.router.add_get(f"/{section}", h["list"])
        app.router.add_post(f"/{section}", h["create"])
        app.router.add_get(f"/{section}/{{name}}", h["get"])
        app.router.add_put(f"/{section}/{{name}}", h["put"])
        app.router.add_patch(f"/{section}/{{name}}", h["patch"])
        app.router.add_delete(f"/{section}/{{name}}", h["delete"])
