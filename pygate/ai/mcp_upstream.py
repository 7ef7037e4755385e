"""Upstream MCP servers behind /mcp: a small streamable-HTTP client.

Each configured server gets one lazily initialized session (initialize, then
notifications/initialized), kept by the service; its id (`Mcp-Session-Id`) goes
with every later request, and a 404 (the server forgot the session) starts a new one
once. Answers may come as JSON or as an SSE stream; both are read. Tools are listed
as SERVER__TOOL; calls are forwarded with the arguments unchanged.
"""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from pygate.ai.secrets import scrub
from pygate.config.ai_schema import McpServer

log = logging.getLogger("pygate.ai")
CLIENT_VERSION = "2025-06-18"
_ids = itertools.count(1)
_TIMEOUT = aiohttp.ClientTimeout(total=60)


class UpstreamError(Exception):
    pass


@dataclass(slots=True)
class _Session:
    session_id: str | None
    version: str


async def _post(service, server: McpServer, session: _Session | None, message: dict) -> Any:
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json, text/event-stream",
        **server.headers,
    }
    if session is not None:
        headers["MCP-Protocol-Version"] = session.version
        if session.session_id:
            headers["Mcp-Session-Id"] = session.session_id
    async with service.engine.session.post(
        server.url, data=orjson.dumps(message), headers=headers, timeout=_TIMEOUT
    ) as response:
        if response.status == 404 and session is not None and session.session_id:
            raise _SessionGone()
        if response.status == 202:
            return None, response.headers.get("Mcp-Session-Id")
        if response.status >= 400:
            raise UpstreamError(f"{server.name} answered {response.status}")
        session_id = response.headers.get("Mcp-Session-Id")
        if response.content_type == "text/event-stream":
            return await _answer_from_stream(response, message.get("id")), session_id
        return orjson.loads(await response.read()), session_id


class _SessionGone(Exception):
    pass


async def _answer_from_stream(response: aiohttp.ClientResponse, message_id: Any) -> Any:
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith("data:"):
            data.append(line[5:].strip())
        elif not line and data:
            message = orjson.loads("\n".join(data))
            data = []
            if isinstance(message, dict) and message.get("id") == message_id:
                return message
    raise UpstreamError("the stream ended without an answer")


async def _open(service, server: McpServer) -> _Session:
    hello = {
        "jsonrpc": "2.0",
        "id": next(_ids),
        "method": "initialize",
        "params": {
            "protocolVersion": CLIENT_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "pygate", "version": "1"},
        },
    }
    answer, session_id = await _post(service, server, None, hello)
    if "error" in answer:
        raise UpstreamError(f"{server.name}: initialize failed: {answer['error'].get('message')}")
    session = _Session(session_id, answer["result"].get("protocolVersion", CLIENT_VERSION))
    notice = {"jsonrpc": "2.0", "method": "notifications/initialized"}
    await _post(service, server, session, notice)
    return session


async def _request(service, server: McpServer, method: str, params: dict) -> dict:
    sessions: dict[str, _Session] = service.mcp_sessions
    for attempt in range(2):
        session = sessions.get(server.name)
        if session is None:
            session = sessions[server.name] = await _open(service, server)
        message = {"jsonrpc": "2.0", "id": next(_ids), "method": method, "params": params}
        try:
            answer, _ = await _post(service, server, session, message)
        except _SessionGone:
            sessions.pop(server.name, None)
            if attempt:
                raise UpstreamError(f"{server.name} keeps forgetting its session") from None
            continue
        if "error" in answer:
            raise UpstreamError(f"{server.name}: {answer['error'].get('message')}")
        return answer["result"]
    raise UpstreamError(f"{server.name}: no answer")


async def upstream_tools(service, servers: list[McpServer]) -> list[dict[str, Any]]:
    tools: list[dict[str, Any]] = []
    for server in servers:
        try:
            cursor = None
            while True:
                result = await _request(
                    service, server, "tools/list", {"cursor": cursor} if cursor else {}
                )
                for tool in result.get("tools", []):
                    tools.append({**tool, "name": f"{server.name}__{tool['name']}"})
                cursor = result.get("nextCursor")
                if not cursor:
                    break
        except (UpstreamError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # One unreachable server must not hide the other tools.
            log.warning("MCP server %s: cannot list its tools: %s", server.name, exc)
    return tools


async def call_upstream_tool(service, server: McpServer, tool: str, arguments: dict) -> dict:
    try:
        return await _request(service, server, "tools/call", {"name": tool, "arguments": arguments})
    except (UpstreamError, aiohttp.ClientError, TimeoutError, ValueError) as exc:
        text = scrub(f"MCP server {server.name} failed: {exc}")  # may quote its URL
        return {"content": [{"type": "text", "text": text}], "isError": True}
