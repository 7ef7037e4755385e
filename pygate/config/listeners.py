"""More listeners besides `listen`, plain or TLS (`listeners:` in the YAML).

The core reads and checks the certificate and key files (tls/ in core-rs) whenever the
config is compiled, at start and at every reload, so an expired certificate or a key that
does not match its certificate is a config error naming the file. Here the paths are made
absolute (relative ones are relative to the config file) and compiled.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterator
from typing import Annotated, Any, Literal

import msgspec

from pygate.config.paths import FieldPath
from pygate.config.units import Duration, HostPattern, ListenAddr

FilePath = Annotated[str, msgspec.Meta(min_length=1)]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class TlsCertificate(_Section):
    cert: FilePath  # PEM: the certificate, then its chain
    key: FilePath  # PEM: its private key (read by the core only, never shown)
    # SNI names it serves; empty: the certificate's own DNS names (subjectAltName).
    names: list[HostPattern] = []


class ClientAuth(_Section):
    """mTLS: client certificates must chain to `ca`; routes with `mtls` use the subject."""

    ca: FilePath
    # False: clients without a certificate may connect (routes with `mtls` refuse them).
    required: bool = True


class TlsSettings(_Section):
    # The first is the default certificate: for a name no certificate serves, and for a
    # client that sends no SNI (nginx's default_server); strict_sni refuses those instead.
    certificates: Annotated[list[TlsCertificate], msgspec.Meta(min_length=1)]
    strict_sni: bool = False
    min_version: Literal["1.2", "1.3"] = "1.2"
    handshake_timeout: Duration = Duration(10_000)
    client_auth: ClientAuth | None = None


class Listener(_Section):
    listen: ListenAddr
    tls: TlsSettings | None = None


def plain_listen(listen: str | None, listeners: list[Listener]) -> str | None:
    """The first plain-HTTP listener (the gateway's own routes, seen from this host)."""
    if listen is not None:
        return str(listen)
    return next((str(lst.listen) for lst in listeners if lst.tls is None), None)


def listener_urls(config: Any, bound: list[str] | None = None) -> list[str]:
    """scheme://address of every listener in the core's order (`listen` first); `bound`:
    the addresses the core bound (port 0 resolved), in the same order."""
    kinds = ([("http", str(config.listen))] if config.listen is not None else []) + [
        ("https" if lst.tls is not None else "http", str(lst.listen)) for lst in config.listeners
    ]
    addrs = bound if bound is not None and len(bound) == len(kinds) else [a for _, a in kinds]
    return [f"{scheme}://{addr}" for (scheme, _), addr in zip(kinds, addrs, strict=True)]


def combination_problems(
    listen: str | None, listeners: list[Listener], ai: Any, invalid: Collection[FieldPath]
) -> Iterator[tuple[FieldPath, str]]:
    """Listener sets that cannot serve: none at all, or AI route tools with no plain one."""
    if any(path[:1] in (("listen",), ("listeners",)) for path in invalid):
        return  # already reported by the schema
    if listen is None and not listeners:
        yield (
            ("listen",),
            "expected a listen address (host:port) or at least one entry in listeners "
            "(plain or tls)",
        )
        return
    mcp_routes = ai.mcp.routes if ai is not None and ai.mcp is not None else []
    if mcp_routes and plain_listen(listen, listeners) is None:
        # The MCP route tools call the gateway's routes on loopback without TLS.
        yield (
            ("ai", "mcp", "routes"),
            "the route tools call this gateway over plain HTTP on loopback: expected `listen` "
            "or a listeners entry without tls",
        )


def resolve_files(listeners: list[Listener], base_dir: str) -> Iterator[tuple[FieldPath, str]]:
    """Make the TLS file paths absolute; no findings (the core reads the files)."""
    for listener in listeners:
        tls = listener.tls
        if tls is None:
            continue
        for cert in tls.certificates:
            cert.cert = os.path.join(base_dir, cert.cert)
            cert.key = os.path.join(base_dir, cert.key)
        if tls.client_auth is not None:
            tls.client_auth.ca = os.path.join(base_dir, tls.client_auth.ca)
    yield from ()


def compile_listeners(listeners: list[Listener]) -> list[dict[str, Any]]:
    return [{"addr": str(lst.listen), "tls": _tls(lst.tls)} for lst in listeners]


def _tls(tls: TlsSettings | None) -> dict[str, Any] | None:
    if tls is None:
        return None
    client = tls.client_auth
    return {
        "certificates": [
            {"cert": c.cert, "key": c.key, "names": [str(n) for n in c.names]}
            for c in tls.certificates
        ],
        "strict_sni": tls.strict_sni,
        "min_version": tls.min_version,
        "handshake_timeout_ms": int(tls.handshake_timeout),
        "client_auth": None if client is None else {"ca": client.ca, "required": client.required},
    }
