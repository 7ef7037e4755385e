"""Refetch the JWKS URLs of `jwt` routes while serving, and swap changed keys into the core.

Identity providers rotate signing keys: a new key is published in the JWKS before tokens
signed with it appear. Every `jwks_refresh` (the shortest of the routes using a URL) the
URLs are fetched again off the event loop; when a document changed, the keys on the
served config's jwt plugins are replaced (jwt.resolved_keys), the config is compiled
again and swapped into the core under the reloader's lock, like any reload: requests
in flight finish on the old keys. A URL that fails keeps its keys, and the failure is
logged.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from pygate.plugins.native import jwt

log = logging.getLogger("pygate")


def _jwks_urls(config: Any) -> tuple[list[str], float]:
    urls, interval = [], None
    for route in config.routes:
        plugin = route.plugins.get("jwt")
        if plugin is not None and plugin.jwks_url:
            urls.append(plugin.jwks_url)
            seconds = int(plugin.jwks_refresh) / 1000
            interval = seconds if interval is None else min(interval, seconds)
    return sorted(set(urls)), interval or 0.0


def _use_keys(config: Any, url: str, keys: list[dict[str, Any]]) -> bool:
    """Give the jwt plugins that read `url` its new keys; True if they differ."""
    changed = False
    for route in config.routes:
        plugin = route.plugins.get("jwt")
        if plugin is not None and plugin.jwks_url == url:
            resolved = jwt.resolved_keys(plugin)
            if resolved.get(url) != keys:
                resolved[url] = keys
                changed = True
    return changed


async def refresh_jwks_forever(reloader: Any, reload_core: Callable[[Any], None]) -> None:
    """Run until cancelled; `reloader.current` is the config being served and
    `reload_core(loaded)` compiles one and swaps it into the core (blocking)."""
    loop = asyncio.get_running_loop()
    while True:
        urls, interval = _jwks_urls(reloader.current.config)
        await asyncio.sleep(interval or 60)  # no URL now: look again after a reload
        if not urls:
            continue
        fetched = {}
        for url in urls:
            try:
                fetched[url] = await loop.run_in_executor(None, jwt.fetch_jwks, url)
            except jwt.JwksError as exc:
                log.warning("jwks refresh: %s (the keys in use stay)", exc)
        async with reloader.lock:
            current = reloader.current
            changed = [url for url, keys in fetched.items() if _use_keys(current.config, url, keys)]
            if not changed:
                continue
            try:
                await loop.run_in_executor(None, reload_core, current)
            except ValueError as exc:
                log.error("jwks refresh: the new keys were refused: %s", exc)
                continue
        log.info("jwks refresh: new keys from %s", ", ".join(changed))
