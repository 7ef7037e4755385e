"""More listeners besides `listen`, plain or TLS (`listeners:` in the YAML).

The core reads and checks the certificate and key files (tls/ in core-rs) whenever the
config is compiled, at start and at every reload, so an expired certificate or a key that
does not match its certificate is a config error naming the file. Here the paths are made
absolute (relative ones are relative to the config file) and compiled.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
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
