"""Where the admin API's endpoints are added to the admin listener
(pygate/server/admin_listener.py)."""

from __future__ import annotations

from aiohttp import web

from pygate.server.admin_api import http_config, http_entities, http_subresources
from pygate.server.admin_api.http_common import SERVICE
from pygate.server.admin_api.service import AdminService


def register(app: web.Application, service: AdminService) -> None:
    """Add the admin API's routes to the admin listener's app."""
    app[SERVICE] = service
    http_entities.register(app)
    http_subresources.register(app)
    http_config.register(app)
