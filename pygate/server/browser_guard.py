"""Refuse what a web page can make a browser send to a listener on this machine.

A page on any site can send "simple" requests to 127.0.0.1:PORT (text/plain, form
encodings, multipart: no CORS preflight), and a page on the attacker's own name that
re-resolves to 127.0.0.1 (DNS rebinding) can even read the answers. Three rules stop
both, for listeners that speak to operators and scripts, not to browsers elsewhere:

- Host must be the listener's own address (its bound ip:port, localhost:port on a
  loopback bind, any IP literal with its port on a wildcard bind) or a configured
  name. A rebinding page always sends its own name; an IP literal is never rebound.
- Origin, when sent, must be the listener's own origin: the scheme and authority of
  the Host it was sent to (https only for configured names, behind a TLS proxy).
  `Origin: null` (sandboxed frames, file:// pages) is foreign. So is a Sec-Fetch-Site
  other than same-origin or none (a no-cors GET from an <img> carries no Origin).
- Bodies must be of a type no HTML form can send (application/json, or YAML where a
  document is imported); see `body_type_problem`.

Pure functions over header values: the admin listener (pygate/server/admin_listener.py)
and any other aiohttp listener wrap them in a middleware.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

JSON_TYPES = frozenset({"application/json"})
YAML_TYPES = frozenset({"application/yaml", "application/x-yaml"})

_DEFAULT_PORTS = {"http": 80, "https": 443}
_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_AUTHORITY = re.compile(r"^(?P<host>\[[0-9a-f:.]+\]|[^\[\]:@/\s]+)(?::(?P<port>\d{1,5}))?$")


def parse_authority(text: str) -> tuple[str, int | None] | None:
    """`host[:port]` as (lower-case host, port or None); None if it is not one."""
    match = _AUTHORITY.match(text.strip().lower())
    if match is None:
        return None
    host, port = match.group("host"), match.group("port")
    if host.startswith("["):
        if not _is_ip(host[1:-1]):
            return None
    elif not (_NAME.match(host) or _is_ip(host)):
        return None
    return host, int(port) if port else None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return False
    return True


def _names(allowed_hosts: list[str] | tuple[str, ...]) -> set[tuple[str, int | None]]:
    names = set()
    for entry in allowed_hosts:
        name = parse_authority(entry)
        if name is None:
            raise ValueError(f"not a host name: {entry!r}")
        names.add(name)
    return names


@dataclass(frozen=True, slots=True)
class SiteRules:
    """Who a listener is: the Hosts (and so the Origins) it answers to."""

    port: int
    own_hosts: frozenset[str]  # hosts that are this listener at `port`
    any_ip: bool  # a wildcard bind: every IP literal at `port` reaches it
    names: frozenset[tuple[str, int | None]]  # configured (name, port or None: any)

    @classmethod
    def for_listener(cls, bound: str, allowed_hosts: list[str] | tuple[str, ...] = ()) -> SiteRules:
        """Rules for a listener bound to `bound` ("ip:port" / "[v6]:port")."""
        parsed = parse_authority(bound)
        if parsed is None or parsed[1] is None:
            raise ValueError(f"not a bound address: {bound!r}")
        host, port = parsed
        own = {host}
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:  # a name (only if the bound socket could not be asked)
            return cls(port, frozenset(own), False, frozenset(_names(allowed_hosts)))
        if ip.is_loopback:
            own |= {"localhost", "127.0.0.1", "[::1]"}
        return cls(port, frozenset(own), ip.is_unspecified, frozenset(_names(allowed_hosts)))

    def host_allowed(self, host_header: str | None) -> bool:
        parsed = parse_authority(host_header) if host_header else None
        if parsed is None:
            return False
        host, port = parsed
        if (host, port) in self.names or (host, None) in self.names:
            return True
        if (port or 80) != self.port:
            return False
        return host in self.own_hosts or (self.any_ip and _is_ip(host))

    def origin_problem(self, origins: list[str], host_header: str | None) -> str | None:
        """Why the request's Origin header(s) are not this listener's own; None if fine."""
        if not origins:
            return None
        if len(origins) > 1:
            return "several Origin headers"
        origin = origins[0].strip()
        scheme, sep, authority = origin.partition("://")
        scheme = scheme.lower()
        if not sep or scheme not in _DEFAULT_PORTS or "/" in authority:
            return f"Origin {origin!r} is not this listener's origin"
        theirs, ours = parse_authority(authority), parse_authority(host_header or "")
        if theirs is None or ours is None:
            return f"Origin {origin!r} is not this listener's origin"
        default = _DEFAULT_PORTS[scheme]
        same = theirs[0] == ours[0] and (theirs[1] or default) == (ours[1] or default)
        if not same:
            return f"Origin {origin!r} is not this listener's origin"
        # Plain http here; https only through a configured name (a TLS proxy in front).
        if scheme == "https" and not any(theirs[0] == name for name, _ in self.names):
            return f"Origin {origin!r} is not this listener's origin (it serves plain http)"
        return None


def fetch_site_problem(sec_fetch_site: str | None) -> str | None:
    """Browsers say where a request comes from; only this origin or the user may ask."""
    if sec_fetch_site is None or sec_fetch_site.strip().lower() in ("same-origin", "none"):
        return None
    return f"Sec-Fetch-Site {sec_fetch_site!r}: a request from another site"


def body_type_problem(
    content_type_header: str | None, has_body: bool, accepted: frozenset[str]
) -> str | None:
    """Why a request body's type is refused (None: accepted). A Content-Type must be
    one of `accepted` whenever it is sent; without one, only an empty body passes."""
    if content_type_header is None:
        if not has_body:
            return None
        return "a request body needs Content-Type: " + " or ".join(sorted(accepted))
    media_type = content_type_header.split(";", 1)[0].strip().lower()
    if media_type in accepted:
        return None
    return f"Content-Type {media_type or '(empty)'!r} is not accepted here; send " + " or ".join(
        sorted(accepted)
    )
