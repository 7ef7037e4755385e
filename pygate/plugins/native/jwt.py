"""jwt: the caller presents `Authorization: Bearer <JSON Web Token>` (runs in the core).

HS256 tokens are checked against `secrets` (each at least 32 bytes); RS256 tokens
against public keys from a JWKS: inline (`jwks`), a file (`jwks_file`, relative to the
config file) or a URL (`jwks_url`). Files and URLs are read when the config is loaded
(and on every reload); URLs are also fetched again every `jwks_refresh` while serving
(pygate/plugins/jwks_refresh.py), so an identity provider's key rotation is picked up
without a reload. A failed refetch keeps the keys in use. exp is required unless
`require_exp: false`; nbf, `issuer` and `audience` are checked when present/set. The
consumer is the value of `consumer_claim` (default `sub`); it is logged and passed
upstream as `X-Consumer-Username`, and rate limits `by: consumer` count per value.
"""

from __future__ import annotations

import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from typing import Any

import msgspec

from pygate.config.schema import Secret
from pygate.config.units import Duration
from pygate.plugins.registry import NativePlugin, RouteContext, register

FETCH_TIMEOUT_S = 5
MAX_JWKS_BYTES = 1024 * 1024


# dict=True: the keys check() reads from jwks_file / jwks_url are kept on the config
# itself (see resolved_keys), not in a field the YAML or the admin API could set.
class JwtConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, dict=True):
    secrets: list[Secret] = []  # write-only in the admin API
    jwks: list[dict[str, Any]] = []
    jwks_file: str | None = None
    jwks_url: str | None = None
    jwks_refresh: Duration = Duration(300_000)
    consumer_claim: str = "sub"
    issuer: str | None = None
    audience: str | None = None
    leeway: Duration = Duration(0)
    require_exp: bool = True
    hide_credentials: bool = True


class JwksError(Exception):
    pass


def resolved_keys(config: JwtConfig) -> dict[str, list[dict[str, Any]]]:
    """The keys read from `jwks_file` / `jwks_url` (by absolute path or URL) when the
    config was checked, or refetched since (jwks_refresh.py); to_core compiles them."""
    return config.__dict__.setdefault("resolved_keys", {})


def _parse_jwks(raw: bytes, source: str) -> list[dict[str, Any]]:
    try:
        document = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise JwksError(f"{source}: expected a JWKS JSON document: {exc}") from None
    keys = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(keys, list) or not all(isinstance(k, dict) for k in keys):
        raise JwksError(f'{source}: expected a JSON object with a "keys" list of JWKs')
    return keys


def _read_file(path: str) -> list[dict[str, Any]]:
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_JWKS_BYTES + 1)
    except OSError as exc:
        raise JwksError(f"cannot read {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_JWKS_BYTES:
        raise JwksError(f"{path}: larger than 1 MiB; expected a JWKS document")
    return _parse_jwks(raw, path)


def _fetch(url: str) -> list[dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=FETCH_TIMEOUT_S) as response:  # noqa: S310
            raw = response.read(MAX_JWKS_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise JwksError(f"cannot fetch {url}: {reason}") from None
    return _parse_jwks(raw, url)


def fetch_jwks(url: str) -> list[dict[str, Any]]:
    """The keys `url` serves now; raises JwksError."""
    return _fetch(url)


def to_core(config: JwtConfig) -> dict[str, Any]:
    keys = list(config.jwks)
    resolved = resolved_keys(config)
    for source in (config.jwks_file, config.jwks_url):
        if source is not None:
            # A config that was not checked (or whose read failed) reads them now.
            keys += resolved.get(source) or (
                _read_file(source) if source == config.jwks_file else _fetch(source)
            )
    return {
        "secrets": list(config.secrets),
        "jwks": keys,
        "consumer_claim": config.consumer_claim,
        "issuer": config.issuer,
        "audience": config.audience,
        "leeway_s": int(config.leeway) // 1000,
        "require_exp": config.require_exp,
        "hide_credentials": config.hide_credentials,
    }


# The keys themselves (a secret's length, a JWK, that there is one) are checked by the
# core, which parses them (core-rs/src/plugins/jwt.rs); this reads the files and URLs.
def check(config: JwtConfig, context: RouteContext) -> Iterable[tuple[tuple, str]]:
    if config.jwks_file is not None:
        # Made absolute here so compiling later does not depend on the working directory.
        config.jwks_file = os.path.join(context.base_dir, config.jwks_file)
        try:
            resolved_keys(config)[config.jwks_file] = _read_file(config.jwks_file)
        except JwksError as exc:
            yield ("jwks_file",), str(exc)
    if config.jwks_url is not None:
        if not config.jwks_url.startswith(("http://", "https://")):
            yield ("jwks_url",), f'expected an http:// or https:// URL, got "{config.jwks_url}"'
        else:
            try:
                resolved_keys(config)[config.jwks_url] = _fetch(config.jwks_url)
            except JwksError as exc:
                yield ("jwks_url",), str(exc)
    if int(config.jwks_refresh) < 1000:
        yield ("jwks_refresh",), "expected at least 1s"
    if not config.consumer_claim:
        yield ("consumer_claim",), "expected a claim name"


PLUGIN = register(
    NativePlugin(
        name="jwt",
        kind="auth",
        schema=JwtConfig,
        to_core=to_core,
        checks=check,
    )
)
