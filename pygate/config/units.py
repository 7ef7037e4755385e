"""Value types written as text in the config: durations, sizes, addresses, names.

Each is a subclass of a builtin (so compiled values are plain ints/strs) with a
`parse` that raises ValueError carrying the message shown to the user. msgspec calls
them through `dec_hook` and attaches the field path to the error for us.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from typing import Annotated, Any

import msgspec

# Marks a field whose value is a secret: config errors never quote it (convert.py), and
# the admin API shows a fingerprint instead (pygate/config/secrets.py).
SECRET_MARK = "secret"
# A secret setting (an admin token, a password, a provider key): may be empty, so that
# `${ENV:-}` works. Entities use schema.Secret, which also must not be empty.
SecretText = Annotated[str, msgspec.Meta(extra={SECRET_MARK: True})]


def describe(value: Any) -> str:
    """A value as it appears in messages: JSON-like, so strings are quoted."""
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_DURATION_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000}


class Duration(int):
    """A duration in milliseconds; written as "250ms", "10s", "5m", "1h" or seconds."""

    @classmethod
    def parse(cls, value: Any) -> Duration:
        expected = 'expected a duration such as "250ms", "10s", "5m", "1h" or a number of seconds'
        if isinstance(value, bool):
            raise ValueError(f"{expected}, got {describe(value)}")
        if isinstance(value, int | float):
            millis = value * 1000
        elif isinstance(value, str) and (match := _DURATION.match(value)):
            number, unit = match.groups()
            millis = float(number) * _DURATION_MS[unit or "s"]
        else:
            raise ValueError(f"{expected}, got {describe(value)}")
        if millis < 0:
            raise ValueError(f"{expected} (not negative), got {describe(value)}")
        if not math.isfinite(millis):  # 1e308 seconds: int() of it would raise OverflowError
            raise ValueError(f"{expected} (a finite one), got {describe(value)}")
        if millis != int(millis):
            raise ValueError(f"expected a whole number of milliseconds, got {describe(value)}")
        return cls(int(millis))


_SIZE = re.compile(r"^\s*(\d+)\s*(?:([kmg])(?:i?b)?|b)?\s*$", re.IGNORECASE)
_SIZE_FACTOR = {None: 1, "k": 1024, "m": 1024**2, "g": 1024**3}


class Size(int):
    """A size in bytes; written as an integer or "512k", "10m", "1g" (powers of 1024)."""

    @classmethod
    def parse(cls, value: Any) -> Size:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return cls(value)
        if isinstance(value, str) and (match := _SIZE.match(value)):
            number, unit = match.groups()
            return cls(int(number) * _SIZE_FACTOR[unit.lower() if unit else None])
        raise ValueError(
            f'expected a size in bytes or with a unit such as "512k", "10m", "1g", '
            f"got {describe(value)}"
        )


_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)"
    r"(\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)


def _split_host_port(value: Any, *, allow_port_zero: bool) -> tuple[str, int]:
    expected = 'expected HOST:PORT such as "127.0.0.1:8080" or "[::1]:8080"'
    if not isinstance(value, str):
        raise ValueError(f"{expected}, got {describe(value)}")
    host, sep, port_text = value.strip().rpartition(":")
    if not sep or not host or not port_text.isdigit():
        raise ValueError(f"{expected}, got {describe(value)}")
    port = int(port_text)
    lowest = 0 if allow_port_zero else 1
    if not lowest <= port <= 65535:
        raise ValueError(f"port must be between {lowest} and 65535, got {describe(value)}")
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"invalid IPv6 address in {describe(value)}") from None
        return host, port
    if ":" in host:
        raise ValueError(f'IPv6 addresses need brackets ("[::1]:8080"), got {describe(value)}')
    if not _HOSTNAME.match(host):
        raise ValueError(f"invalid host name in {describe(value)}")
    return host, port


def is_loopback_listen(listen: str) -> bool:
    """Whether a `host:port` listen address only accepts connections from this machine."""
    host = listen.rpartition(":")[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class ListenAddr(str):
    """An address to bind, HOST:PORT; port 0 asks the OS for a free port."""

    @classmethod
    def parse(cls, value: Any) -> ListenAddr:
        host, port = _split_host_port(value, allow_port_zero=True)
        return cls(f"{host}:{port}")


class TargetAddr(str):
    """An upstream target address, HOST:PORT."""

    @classmethod
    def parse(cls, value: Any) -> TargetAddr:
        host, port = _split_host_port(value, allow_port_zero=False)
        return cls(f"{host}:{port}")


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Name(str):
    """Names of routes, upstreams and consumers: they end up in logs and URLs."""

    @classmethod
    def parse(cls, value: Any) -> Name:
        if isinstance(value, str) and _NAME.match(value):
            return cls(value)
        raise ValueError(
            "expected a name of letters, digits, '.', '_' or '-' (starting with a letter "
            f"or digit, at most 128 characters), got {describe(value)}"
        )


_METHOD = re.compile(r"^[A-Z][A-Z-]{0,31}$")


class HttpMethod(str):
    """An HTTP method; written in any case, stored upper-case as it goes on the wire."""

    @classmethod
    def parse(cls, value: Any) -> HttpMethod:
        if isinstance(value, str) and _METHOD.match(value.upper()):
            return cls(value.upper())
        raise ValueError(f"expected an HTTP method such as GET or POST, got {describe(value)}")


_PARAM = re.compile(r"^\{[A-Za-z_][A-Za-z0-9_]*\}$")
_PATH_SEGMENT = re.compile(r"^[A-Za-z0-9\-._~!$&'()+,;=:@%]*$")


class RoutePath(str):
    """A route path: exact ("/a/b"), with parameters ("/a/{id}") or a prefix ("/a/*")."""

    @classmethod
    def parse(cls, value: Any) -> RoutePath:
        expected = 'expected a path such as "/api/items", "/api/items/{id}" or "/static/*"'
        if not isinstance(value, str) or not value.startswith("/"):
            raise ValueError(f"{expected}, got {describe(value)}")
        segments = value[1:].split("/")
        for position, segment in enumerate(segments):
            last = position == len(segments) - 1
            if segment == "*":
                if not last:
                    raise ValueError(
                        f"'*' is only allowed as the last segment, got {describe(value)}"
                    )
            elif segment.startswith("{") or segment.endswith("}"):
                if not _PARAM.match(segment):
                    raise ValueError(
                        f"a parameter segment must look like {{name}}, got {segment!r} in {value!r}"
                    )
            elif not _PATH_SEGMENT.match(segment) or "*" in segment:
                raise ValueError(
                    f"invalid character in segment {describe(segment)} of {describe(value)}"
                )
        return cls(value)


_HOST_PATTERN = re.compile(
    r"^(\*\.)?[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$"
)


class HostPattern(str):
    """A request host to match: "api.example.com" or a wildcard "*.example.com"."""

    @classmethod
    def parse(cls, value: Any) -> HostPattern:
        if isinstance(value, str) and _HOST_PATTERN.match(value.lower()):
            return cls(value.lower())
        raise ValueError(
            f'expected a host name such as "api.example.com" or "*.example.com", '
            f"got {describe(value)}"
        )


_PARSERS = {
    Duration: Duration.parse,
    Size: Size.parse,
    ListenAddr: ListenAddr.parse,
    TargetAddr: TargetAddr.parse,
    Name: Name.parse,
    HttpMethod: HttpMethod.parse,
    RoutePath: RoutePath.parse,
    HostPattern: HostPattern.parse,
}


def dec_hook(kind: type, value: Any) -> Any:
    """msgspec hook: build our text-typed values; anything else is not ours to convert."""
    parser = _PARSERS.get(kind)
    if parser is None:
        raise NotImplementedError(f"no decoder for {kind!r}")
    return parser(value)
