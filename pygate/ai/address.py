"""The AI listener's socket, bound before the core's config is compiled.

`pygate serve` binds the AI listener's socket first (port 0 picks a free port); the
runtime keeps the address (`AiRuntime.listener`) and serve compiles every core config,
the first and each reload's, with it. Processes that only check a config never bind
(see pygate.config.ai_routes).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pygate.config.ai_schema import AiSettings


def bind_listener(settings: AiSettings) -> tuple[socket.socket, str]:
    """Bind (and listen on) the AI listener's socket; returns it and its address."""
    host, _, port = settings.listen.rpartition(":")
    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), int(port)))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    bound_host, bound_port = sock.getsockname()[:2]
    address = (
        f"[{bound_host}]:{bound_port}"
        if family == socket.AF_INET6
        else (f"{bound_host}:{bound_port}")
    )
    return sock, address
