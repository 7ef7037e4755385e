"""Which gateway a CLI command means, as both ends of the admin connection see it.

A command names the config file (its real path) and the log store it was given in two
headers; a gateway serving another config (one that took this config's admin port)
refuses instead of acting for it. Plain functions with no server imports, so the CLI
(pygate/cli/admin_client.py) does not load aiohttp to build two headers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import quote, unquote

EXPECT_CONFIG = "Pygate-Expect-Config"
EXPECT_STORE = "Pygate-Expect-Store"


def expectation_headers(config_file: str, store_url: str) -> dict[str, str]:
    """What a CLI command sends so that only the gateway serving its config acts."""
    return {
        EXPECT_CONFIG: quote(os.path.realpath(config_file), safe="/"),
        EXPECT_STORE: quote(store_url, safe="/:@"),
    }


def wrong_gateway(headers: Mapping[str, str], config_file: str, store_url: str) -> str | None:
    """Why this gateway is not the one the request's headers name; None if it is (or
    the request names none). `store_url` is the password-free form (StoreLocation.url)."""
    wanted_config = headers.get(EXPECT_CONFIG)
    wanted_store = headers.get(EXPECT_STORE)
    ours_config = os.path.realpath(config_file)
    if (wanted_config is None or unquote(wanted_config) == ours_config) and (
        wanted_store is None or unquote(wanted_store) == store_url
    ):
        return None
    asked = unquote(wanted_config or "") or "(not said)"
    return (
        f"the gateway answering here serves {ours_config} (log store {store_url}), "
        f"not {asked} (log store {unquote(wanted_store or '')}): "
        "another gateway holds this admin port"
    )
