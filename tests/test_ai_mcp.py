"""/mcp through the gateway, driven by the official `mcp` SDK client.

Tools: the prompt template (an AI call with its ai_calls row), a gateway route called
with the caller's own key, and the tools of an upstream MCP server built with the SDK.
"""

from __future__ import annotations

import asyncio
import json

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from support.ai_setup import CONSUMERS, ai_row, cost, new_request_id
from support.net import wait_until


def run_session(gateway, consumer: str, work, request_id: str | None = None):
    headers = {"apikey": CONSUMERS[consumer]}
    if request_id:
        headers["X-Request-Id"] = request_id

    async def main():
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(gateway.url("/mcp"), http_client=http) as streams:
                async with ClientSession(streams[0], streams[1]) as session:
                    await session.initialize()
                    return await work(session)

    return asyncio.run(main())


def test_tools_are_listed(ai_gw):
    async def work(session):
        return {tool.name: tool for tool in (await session.list_tools()).tools}

    tools = run_session(ai_gw, "alice", work)
    assert {"sentiment", "list_models", "calc__add", "calc__shout"} <= set(tools)
    schema = tools["sentiment"].input_schema
    assert schema["required"] == ["scale", "text"]
    assert schema["properties"]["scale"] == {"type": "integer"}
    assert set(tools["calc__add"].input_schema["properties"]) == {"a", "b"}


def test_template_tool_is_an_accounted_ai_call(ai_gw):
    rid = new_request_id()

    async def work(session):
        return await session.call_tool("sentiment", {"text": "nice", "scale": 3})

    result = run_session(ai_gw, "erin", work, request_id=rid)
    assert not result.is_error
    assert result.content[0].text == "echo: Rate nice from 1 to 3"
    row = ai_row(ai_gw, rid)
    assert (row["endpoint"], row["consumer"], row["status"]) == (
        "mcp:template:sentiment@2",
        "erin",
        200,
    )
    # system "You rate sentiment." (3) + "Rate nice from 1 to 3" (6); reply 7 words
    assert (row["prompt_tokens"], row["completion_tokens"]) == (9, 7)
    assert row["cost_usd"] == pytest.approx(cost("openai/gpt-4o-mini", 9, 7))


def test_bad_template_variables_are_a_tool_error(ai_gw):
    async def work(session):
        return await session.call_tool("sentiment", {"text": "nice"})

    result = run_session(ai_gw, "alice", work)
    assert result.is_error
    assert "missing variables: scale" in result.content[0].text


def test_route_tool_uses_the_callers_key(ai_gw):
    async def work(session):
        return await session.call_tool("list_models", {})

    result = run_session(ai_gw, "frank", work)
    assert not result.is_error
    models = {m["id"] for m in json.loads(result.content[0].text)["data"]}
    assert "gpt" in models
    # The route was called through the core as frank: it has its own call record.
    sql = (
        "SELECT count() AS n FROM pygate.requests "
        "WHERE path = '/v1/models' AND consumer = 'frank' AND status = 200"
    )
    wait_until(lambda: ai_gw.logs_query(sql)[0]["n"] >= 1, 60, what="the route's record")


def test_upstream_mcp_server_tools(ai_gw):
    async def work(session):
        added = await session.call_tool("calc__add", {"a": 2, "b": 40})
        shouted = await session.call_tool("calc__shout", {"text": "hi"})
        return added, shouted

    added, shouted = run_session(ai_gw, "alice", work)
    assert added.content[0].text == "42" and not added.is_error
    assert shouted.content[0].text == "HI"


def test_mcp_needs_a_consumer_key(ai_gw):
    async def main():
        async with httpx2.AsyncClient(timeout=10) as http:
            response = await http.post(
                ai_gw.url("/mcp"),
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                headers={"Accept": "application/json, text/event-stream"},
            )
            return response.status_code

    assert asyncio.run(main()) == 401
