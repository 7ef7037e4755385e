"""The AI listener's address, known before the core's config is compiled.

`pygate serve` binds the AI listener's socket first (port 0 picks a free port) and
records the address here; the config compiler points the internal upstream at it, on
the first compile and on every reload. Processes that only check a config (`pygate
check`) never bind: they compile with the configured address, or a fixed stand-in
port when it is 0, which is enough for the core to validate the rest.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pygate.ai.config import AiSettings


_bound: str | None = None
_CHECK_ONLY_PORT = 9


def bind_listener(settings: AiSettings) -> socket.socket:
    """Bind (and listen on) the AI listener's socket; remember its address."""
    global _bound
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
    _bound = (
        f"[{bound_host}]:{bound_port}"
        if family == socket.AF_INET6
        else (f"{bound_host}:{bound_port}")
    )
    return sock


def upstream_target(settings: AiSettings) -> str:
    if _bound is not None:
        return _bound
    host, _, port = settings.listen.rpartition(":")
    return f"{host}:{port if port != '0' else _CHECK_ONLY_PORT}"
