"""Is this request from the core? The one place that decides.

The AI listener is on loopback and only the core should talk to it: the core has done
key-auth and set X-Consumer-Username (stripping any client-sent copy) and X-Request-Id.
The compiled AI routes carry `inject_headers` with a secret made fresh by each
runtime (`AiRuntime.bind`, compiled in by pygate.config.ai_routes.with_ai_secret), so a
local process that finds the listener's port still cannot call it directly and pose as
a consumer.
"""

from __future__ import annotations

import hmac
import ipaddress

from aiohttp import web

from pygate.config.ai_routes import SECRET_HEADER

CORE_INJECTS_HEADERS = True
# The secret the core sends in SECRET_HEADER (set on the app by AiGateway).
INTERNAL_SECRET = web.AppKey("internal_secret", str)


def came_through_core(request: web.Request) -> bool:
    peer = request.transport.get_extra_info("peername") if request.transport else None
    try:
        loopback = peer is not None and ipaddress.ip_address(peer[0]).is_loopback
    except ValueError:
        loopback = False
    if not loopback or "X-Request-Id" not in request.headers:
        return False
    if CORE_INJECTS_HEADERS:
        sent = request.headers.get(SECRET_HEADER, "")
        return hmac.compare_digest(sent.encode(), request.app[INTERNAL_SECRET].encode())
    return True
