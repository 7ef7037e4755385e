"""Log store URLs (`chdb://PATH`) without importing any backend."""

from __future__ import annotations

import os
from dataclasses import dataclass

SUPPORTED_SCHEMES = ("chdb",)


@dataclass(frozen=True, slots=True)
class StoreLocation:
    scheme: str
    path: str  # absolute

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.path}"


def parse_store_url(url: str, base_dir: str) -> StoreLocation:
    """Parse a store URL; relative paths are taken relative to `base_dir`.

    Raises ValueError with a message meant for the user.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ValueError(f'expected a store URL such as "chdb://./pygate-data", got "{url}"')
    if scheme not in SUPPORTED_SCHEMES:
        supported = ", ".join(f"{s}://" for s in SUPPORTED_SCHEMES)
        raise ValueError(f'unsupported log store "{scheme}://"; supported: {supported}')
    if not rest:
        raise ValueError(f'expected a data directory after "{scheme}://", got "{url}"')
    path = os.path.expanduser(rest)
    return StoreLocation(scheme, os.path.normpath(os.path.join(base_dir, path)))
