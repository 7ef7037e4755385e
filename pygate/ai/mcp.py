"""MCP at /mcp (streamable HTTP): prompt templates, chosen routes and upstream MCP
servers' tools as one tool list.

The core routes /mcp like any route (key-auth, rate limits, the call record); this is
the server side of the protocol: JSON-RPC over POST, answered as application/json
(the transport allows that instead of an SSE stream), no server-initiated messages
(GET is 405), stateless (no session id). Tools:
- each prompt template (`ai.mcp.templates`), input schema from its typed variables;
- each `ai.mcp.routes` entry: a call of that gateway path with the caller's own key,
  so the route's auth, limits and logging apply as to any other call;
- every tool of each `ai.mcp.servers` upstream, named SERVER__TOOL (mcp_upstream.py).
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
from aiohttp import web

from pygate.ai.call import CHAT
from pygate.ai.errors import AiError
from pygate.ai.secrets import scrub
from pygate.ai.service import AiService
from pygate.ai.templates import build_body, check_variables, choose_version

# The initialize handshake's revisions; the client's is echoed when we know it.
PROTOCOL_VERSIONS = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")
METHOD_NOT_FOUND, INVALID_PARAMS, PARSE_ERROR = -32601, -32602, -32700
CREDENTIAL_HEADERS = ("Authorization", "apikey", "x-api-key")
_ROUTE_TIMEOUT = aiohttp.ClientTimeout(total=60)
_JSON_TYPES = {"string": "string", "number": "number", "integer": "integer", "boolean": "boolean"}


async def handle_mcp(request: web.Request) -> web.StreamResponse:
    from pygate.ai.app import SERVICE

    service = request.app[SERVICE]
    if service.settings.mcp is None:
        raise AiError(404, "no_route", "MCP is not configured (ai.mcp)")
    if request.method != "POST":
        # No server-initiated stream and no sessions to delete.
        message = f"{request.method} is not allowed on /mcp: this server answers POST only"
        raise AiError(405, "method_not_allowed", message, {"Allow": "POST"})
    try:
        payload = orjson.loads(await request.read())
    except orjson.JSONDecodeError as exc:
        return _json(_error(None, PARSE_ERROR, f"parse error: {exc}"))
    batch = isinstance(payload, list)
    answers = []
    for message in payload if batch else [payload]:
        if isinstance(message, dict) and "method" in message and "id" in message:
            answers.append(await _dispatch(service, request, message))
    if not answers:  # notifications and responses only
        return web.Response(status=202)
    return _json(answers if batch else answers[0])


def _json(body: Any) -> web.Response:
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def _result(message_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": message_id, "result": result}


def _error(message_id: Any, code: int, text: str) -> dict[str, Any]:
    error = {"code": code, "message": scrub(text)}
    return {"jsonrpc": "2.0", "id": message_id, "error": error}


async def _dispatch(service: AiService, request: web.Request, message: dict) -> dict:
    method, message_id = message["method"], message["id"]
    params = message.get("params") or {}
    if method == "initialize":
        asked = params.get("protocolVersion")
        version = asked if asked in PROTOCOL_VERSIONS else PROTOCOL_VERSIONS[-1]
        return _result(
            message_id,
            {
                "protocolVersion": version,
                "capabilities": {"tools": {"listChanged": False}},
                "serverInfo": {"name": "pygate", "version": _version()},
            },
        )
    if method == "ping":
        return _result(message_id, {})
    if method == "tools/list":
        return _result(message_id, {"tools": await _tools(service, request)})
    if method == "tools/call":
        name, arguments = params.get("name"), params.get("arguments") or {}
        if not isinstance(arguments, dict):
            return _error(message_id, INVALID_PARAMS, "arguments must be an object")
        outcome = await _call(service, request, str(name), arguments)
        if outcome is None:
            return _error(message_id, INVALID_PARAMS, f"unknown tool {name!r}")
        return _result(message_id, outcome)
    return _error(message_id, METHOD_NOT_FOUND, f"method not found: {method}")


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pygate")
    except PackageNotFoundError:
        return "0"


async def _tools(service: AiService, request: web.Request) -> list[dict[str, Any]]:
    mcp = service.settings.mcp
    assert mcp is not None
    tools = []
    if mcp.templates:
        for template in service.settings.templates:
            version = choose_version(template)
            properties = {n: {"type": _JSON_TYPES[k]} for n, k in version.variables.items()}
            schema = {
                "type": "object",
                "properties": properties,
                "required": sorted(version.variables),
                "additionalProperties": False,
            }
            description = template.description or f"prompt template {template.name}"
            tools.append({"name": template.name, "description": description, "inputSchema": schema})
    for route in mcp.routes:
        where = "query parameters" if route.method == "GET" else "the JSON body"
        tools.append(
            {
                "name": route.name,
                "description": route.description or f"{route.method} {route.path}",
                "inputSchema": {
                    "type": "object",
                    "description": f"arguments become {where}",
                    "additionalProperties": True,
                },
            }
        )
    from pygate.ai.mcp_upstream import upstream_tools

    tools.extend(await upstream_tools(service, mcp.servers))
    return tools


def _text_result(text: str, is_error: bool = False) -> dict[str, Any]:
    # An error text may quote an upstream's answer: never with a secret in it.
    text = scrub(text) if is_error else text
    return {"content": [{"type": "text", "text": text}], "isError": is_error}


async def _call(
    service: AiService, request: web.Request, name: str, arguments: dict
) -> dict[str, Any] | None:
    mcp = service.settings.mcp
    assert mcp is not None
    if mcp.templates:
        template = next((t for t in service.settings.templates if t.name == name), None)
        if template is not None:
            return await _call_template(service, request, template, arguments)
    route = next((r for r in mcp.routes if r.name == name), None)
    if route is not None:
        return await _call_route(service, request, route, arguments)
    server_name, sep, tool = name.partition("__")
    server = next((s for s in mcp.servers if s.name == server_name), None)
    if sep and server is not None:
        from pygate.ai.mcp_upstream import call_upstream_tool

        return await call_upstream_tool(service, server, tool, arguments)
    return None


async def _call_template(service, request, template, arguments: dict) -> dict[str, Any]:
    version = choose_version(template)
    label = f"mcp:template:{template.name}@{version.version}"
    call = service.begin(request, label, version.model or template.model, False)
    try:
        with call.recorded():
            check_variables(version, arguments)
        completion = await call.run(CHAT, build_body(template, version, arguments))
    except AiError as error:
        return _text_result(error.message, is_error=True)
    return _text_result(completion["choices"][0]["message"].get("content") or "")


async def _call_route(service, request, route, arguments: dict) -> dict[str, Any]:
    headers = {h: request.headers[h] for h in CREDENTIAL_HEADERS if h in request.headers}
    url = service.gateway_url + route.path
    session = service.engine.session
    if route.method == "GET":
        query = {
            k: v if isinstance(v, str) else orjson.dumps(v).decode() for k, v in arguments.items()
        }
        call = session.get(url, params=query, headers=headers, timeout=_ROUTE_TIMEOUT)
    else:
        data = orjson.dumps(arguments)
        call = session.post(url, data=data, headers=headers, timeout=_ROUTE_TIMEOUT)
    async with call as response:
        text = await response.text()
        return _text_result(text, is_error=response.status >= 400)
