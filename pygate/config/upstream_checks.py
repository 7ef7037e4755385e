"""Upstream transport checks: TLS settings only mean something with `scheme: https`, and
each HTTP/2 flavour needs its scheme. The core checks the same when it builds the
connectors (upstream/transport.rs); here they point at the line of the file."""

from __future__ import annotations

import os
from collections.abc import Iterator

from pygate.config.paths import FieldPath
from pygate.config.schema import GatewayConfig

Finding = tuple[FieldPath, str]


def upstream_transport_problems(config: GatewayConfig, base_dir: str) -> Iterator[Finding]:
    for index, u in enumerate(config.upstreams):
        at = ("upstreams", index)
        if u.protocol == "h2" and u.scheme != "https":
            yield (
                (*at, "protocol"),
                "h2 is HTTP/2 over TLS and needs scheme: https; use h2c for HTTP/2 without TLS",
            )
        if u.protocol == "h2c" and u.scheme == "https":
            yield ((*at, "protocol"), "h2c is HTTP/2 without TLS; with scheme: https use h2")
        if u.scheme != "https":
            for field, set_ in (
                ("ca_file", u.ca_file is not None),
                ("sni", u.sni is not None),
                ("tls_verify", not u.tls_verify),
            ):
                if set_:
                    yield ((*at, field), "only applies with scheme: https")
            continue
        if u.ca_file is not None:
            if not u.tls_verify:
                yield (
                    (*at, "ca_file"),
                    "expected no ca_file with tls_verify: false (nothing is verified)",
                )
            elif not os.path.isfile(resolve_path(u.ca_file, base_dir)):
                yield ((*at, "ca_file"), f"expected a PEM file; {u.ca_file!r} does not exist")


def resolve_path(path: str, base_dir: str) -> str:
    """A path in the config file, relative to the file's directory."""
    return os.path.join(base_dir, os.path.expanduser(path))


def resolve_ca_files(config: GatewayConfig, base_dir: str) -> None:
    """Make `ca_file`s absolute: the core reads them and has no idea where the file was."""
    for u in config.upstreams:
        if isinstance(u.ca_file, str):  # not a stand-in for a value that failed
            u.ca_file = resolve_path(u.ca_file, base_dir)


def unverified_upstreams(config: GatewayConfig) -> list[str]:
    """Names of the upstreams whose TLS certificates are not checked (`tls_verify: false`)."""
    return [str(u.name) for u in config.upstreams if u.scheme == "https" and not u.tls_verify]
