"""A self-refreshing dashboard page on the admin listener: the canned reports as charts.

    GET /dashboard[?since=1h][&refresh=5][#token=T]

The page is one HTML response with its script and style inlined: nothing is fetched
from a CDN (admin listeners often have no internet) and there are no static routes
to protect separately. Its script polls `GET /logs/report/{name}` (pygate.reports.http).

The page itself holds no data, so it is served without the admin token (the Host and
Origin rules still apply); its script sends the token as `Authorization: Bearer` on
every poll. The token reaches the page once in the URL fragment
(`/dashboard#token=T`: fragments are never sent to a server, so it stays out of logs
and Referer headers) or through the page's login form, and is kept in the tab's
sessionStorage, never in a cookie. The response forbids caching and referrers, and its
Content-Security-Policy allows exactly the inlined script and style (by hash) and
requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib
from functools import cache
from importlib import resources

from aiohttp import web

DASHBOARD_PATH = "/dashboard"


def register(app: web.Application) -> None:
    app.router.add_get(DASHBOARD_PATH, _page)


async def _page(_request: web.Request) -> web.Response:
    html, csp = _rendered_page()
    return web.Response(
        text=html,
        content_type="text/html",
        headers={
            "Content-Security-Policy": csp,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
        },
    )


@cache
def _rendered_page() -> tuple[str, str]:
    """The page with its assets inlined, and the CSP that allows exactly those assets."""
    folder = resources.files(__name__)
    script = folder.joinpath("dashboard.js").read_text("utf-8")
    style = folder.joinpath("dashboard.css").read_text("utf-8")
    html = (
        folder.joinpath("page.html")
        .read_text("utf-8")
        .replace("/*STYLE*/", style)
        .replace("/*SCRIPT*/", script)
    )
    csp = "; ".join(
        [
            "default-src 'none'",
            f"script-src '{_sha256(script)}'",
            f"style-src '{_sha256(style)}'",
            "connect-src 'self'",
            "img-src 'self' data:",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )
    return html, csp


def _sha256(text: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()
