"""An upstream MCP server for the tests, built with the official `mcp` SDK.

python tests/support/mcp_upstream_server.py PORT      # streamable HTTP at /mcp
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("calc")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def shout(text: str) -> str:
    """Upper-case a text."""
    return text.upper()


if __name__ == "__main__":
    server.run(
        "streamable-http", host="127.0.0.1", port=int(sys.argv[1]), streamable_http_path="/mcp"
    )
