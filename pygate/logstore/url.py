"""Log store URLs, parsed without importing any backend.

    chdb://PATH                                   embedded chDB in a local directory
    clickhouse://USER:PASSWORD@HOST:8123/pygate   a ClickHouse server over HTTP
    clickhouses://USER:PASSWORD@HOST:8443/pygate  the same over TLS (or ?secure=1)

Server URL options (query string): secure=1, verify=0 (do not check the server's
certificate: self-signed test servers only), ca_cert=PATH (PEM bundle to trust),
compress=lz4|zstd|gzip|none (insert compression; default lz4).
User and password may be percent-encoded; use ${ENV} substitution for the password.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from pygate.logstore.cluster_ddl import ClusterSchema

SUPPORTED_SCHEMES = ("chdb", "clickhouse", "clickhouses")
SERVER_SCHEMES = ("clickhouse", "clickhouses")
# Every table pygate creates is qualified with this database (see migrations/).
DATABASE = "pygate"
_COMPRESSIONS = ("lz4", "zstd", "gzip", "none")
_OPTIONS = ("secure", "verify", "ca_cert", "compress")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class ServerAddress:
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    secure: bool
    verify: bool
    ca_cert: str | None
    compress: str


@dataclass(frozen=True, slots=True)
class StoreLocation:
    scheme: str
    path: str  # chdb: absolute data directory; servers: ""
    server: ServerAddress | None = None
    # log.cluster (servers only): the schema is the cluster's, see cluster_ddl.py.
    cluster: ClusterSchema | None = None

    @property
    def url(self) -> str:
        """The location for messages: never includes the password."""
        if self.server is None:
            return f"{self.scheme}://{self.path}"
        s = self.server
        scheme = "clickhouses" if s.secure else "clickhouse"
        return f"{scheme}://{s.user}@{s.host}:{s.port}/{DATABASE}"

    @property
    def is_server(self) -> bool:
        return self.server is not None


def parse_store_url(url: str, base_dir: str) -> StoreLocation:
    """Parse a store URL; relative chdb paths are taken relative to `base_dir`.

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
    if scheme in SERVER_SCHEMES:
        return StoreLocation(scheme, "", _parse_server(scheme, url))
    path = os.path.expanduser(rest)
    return StoreLocation(scheme, os.path.normpath(os.path.join(base_dir, path)))


def _parse_server(scheme: str, url: str) -> ServerAddress:
    parts = urlsplit(url)
    shown = _without_password(url)
    if not parts.hostname:
        raise ValueError(
            f'expected a host in "{shown}", e.g. clickhouse://user:pw@host:8123/pygate'
        )
    database = parts.path.strip("/")
    if database not in ("", DATABASE):
        raise ValueError(
            f'expected the database "{DATABASE}" (or none) in the URL path, got "{database}"'
        )
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = sorted(set(options) - set(_OPTIONS))
    if unknown:
        raise ValueError(
            f'unknown store URL option "{unknown[0]}"; known options: {", ".join(_OPTIONS)}'
        )
    secure = scheme == "clickhouses" or _flag(options, "secure", False)
    compress = options.get("compress", "lz4")
    if compress not in _COMPRESSIONS:
        raise ValueError(f'compress: expected one of {", ".join(_COMPRESSIONS)}, got "{compress}"')
    try:
        port = parts.port or (8443 if secure else 8123)
    except ValueError as exc:
        raise ValueError(f'bad port in "{shown}": {exc}') from None
    return ServerAddress(
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "default"),
        password=unquote(parts.password or ""),
        secure=secure,
        verify=_flag(options, "verify", True),
        ca_cert=options.get("ca_cert") or None,
        compress=compress,
    )


def _flag(options: dict[str, str], name: str, default: bool) -> bool:
    value = options.get(name)
    if value is None:
        return default
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise ValueError(f'{name}: expected 1/0 or true/false, got "{value}"')


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()
