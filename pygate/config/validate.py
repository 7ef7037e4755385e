"""Checks that span fields: references, uniqueness, plugin combinations.

They run on the built GatewayConfig, also when the schema found problems: values that
failed are stand-ins then (see pygate.config.convert), and the loader drops findings
about them. Path conflicts between routes are left to the core's `check_config`,
which owns the router.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

import msgspec

from pygate.config.admin_checks import admin_problems
from pygate.config.ai_checks import ai_problems
from pygate.config.cluster import cluster_limits_without_redis, cluster_problems
from pygate.config.listeners import combination_problems, resolve_files
from pygate.config.log_cluster import log_cluster_problems
from pygate.config.paths import FieldPath, names_uncertain
from pygate.config.schema import BasicCredential, Consumer, GatewayConfig, Target
from pygate.config.secrets import fingerprint_problems
from pygate.config.units import Name
from pygate.config.upstream_checks import upstream_transport_problems
from pygate.logstore.url import parse_store_url
from pygate.plugins import RouteContext, get_plugin

Finding = tuple[FieldPath, str]


def semantic_problems(
    config: GatewayConfig, base_dir: str, *, invalid: Collection[FieldPath] = ()
) -> Iterator[Finding]:
    """`invalid`: paths whose values failed the schema (and were reported)."""
    judged = _with_stand_in_consumers(config, invalid)
    yield from _unique_names(config)
    yield from _route_references(config, invalid)
    yield from _identical_route_paths(config)
    yield from _consumer_keys(config)
    yield from _upstream_targets(config)
    yield from upstream_transport_problems(config, base_dir)
    yield from combination_problems(config.listen, config.listeners, config.ai, invalid)
    yield from _listeners(config)
    yield from resolve_files(config.listeners, base_dir)
    yield from _http2_sizes(config)
    yield from admin_problems(config)
    yield from cluster_problems(config.cluster)
    if config.cluster.redis is None:
        yield from cluster_limits_without_redis(config.routes)
    yield from fingerprint_problems(config)
    yield from _log_store(config, base_dir)
    yield from _plugin_checks(judged, base_dir, invalid)
    yield from ai_problems(judged, invalid)


def stand_in_consumer(index: int) -> Consumer:
    """Stands for a consumer that failed the schema: it has a key and a password, as the
    file most likely meant, so "needs a consumer with keys" is not said on its behalf."""
    name = f"pygate-stand-in-{index}"
    return Consumer(
        name=Name(name), keys=[name], basic_auth=[BasicCredential(username=name, password=name)]
    )


def _with_stand_in_consumers(
    config: GatewayConfig, invalid: Collection[FieldPath]
) -> GatewayConfig:
    if not invalid:
        return config
    if ("consumers",) in invalid:
        return msgspec.structs.replace(config, consumers=[stand_in_consumer(0)])
    failed = {p[1] for p in invalid if p[:1] == ("consumers",) and len(p) >= 2}
    if not failed:
        return config
    consumers = [stand_in_consumer(i) if i in failed else c for i, c in enumerate(config.consumers)]
    return msgspec.structs.replace(config, consumers=consumers)


def _unique_names(config: GatewayConfig) -> Iterator[Finding]:
    for section, items in (
        ("upstreams", config.upstreams),
        ("consumers", config.consumers),
        ("routes", config.routes),
    ):
        first_index: dict[str, int] = {}
        for index, item in enumerate(items):
            earlier = first_index.setdefault(item.name, index)
            if earlier != index:
                yield (
                    (section, index, "name"),
                    f'duplicate name "{item.name}" (also used by {section}[{earlier}])',
                )


def _route_references(config: GatewayConfig, invalid: Collection[FieldPath]) -> Iterator[Finding]:
    if names_uncertain(invalid, ("upstreams",)):
        return  # "unknown upstream" could be the one whose name failed: said once, there
    known = [u.name for u in config.upstreams]
    for index, route in enumerate(config.routes):
        if route.upstream not in known:
            defined = ", ".join(known) if known else "none are defined"
            yield (
                ("routes", index, "upstream"),
                f'unknown upstream "{route.upstream}" (defined upstreams: {defined})',
            )


_PARAM_SEGMENT = re.compile(r"\{[^/}]*\}")


def _identical_route_paths(config: GatewayConfig) -> Iterator[Finding]:
    """The same path on two routes that can see the same request is ambiguous.

    Only exact duplicates (parameter names aside) are caught here, with a message that
    names both routes; subtler overlaps are the core router's to judge.
    """
    claimed: dict[str, list[tuple[int, str]]] = {}
    for index, route in enumerate(config.routes):
        for path_index, path in enumerate(route.paths):
            shape = _PARAM_SEGMENT.sub("{}", path)
            for other_index, other_path in claimed.get(shape, []):
                other = config.routes[other_index]
                if (
                    other_index != index
                    and _overlap(route.hosts, other.hosts)
                    and _overlap(route.methods, other.methods)
                ):
                    yield (
                        ("routes", index, "paths", path_index),
                        f'conflicts with route "{other.name}" path "{other_path}" '
                        "(same hosts and methods)",
                    )
                    break
            claimed.setdefault(shape, []).append((index, path))


def _overlap(left: list[str], right: list[str]) -> bool:
    # An empty list means "any".
    return not left or not right or bool(set(left) & set(right))


def _consumer_keys(config: GatewayConfig) -> Iterator[Finding]:
    # Keys are secrets: name the consumer that owns the clash, never the key itself.
    owner: dict[str, int] = {}
    for index, consumer in enumerate(config.consumers):
        for key_index, key in enumerate(consumer.keys):
            other = owner.setdefault(key, index)
            if (other, key_index) == (index, consumer.keys.index(key)):
                continue
            who = (
                "this consumer" if other == index else f'consumer "{config.consumers[other].name}"'
            )
            yield (
                ("consumers", index, "keys", key_index),
                f"duplicate key: already assigned to {who}",
            )


def _upstream_targets(config: GatewayConfig) -> Iterator[Finding]:
    for index, upstream in enumerate(config.upstreams):
        seen: set[str] = set()
        for target_index, target in enumerate(upstream.targets):
            addr = target.addr if isinstance(target, Target) else target
            if addr in seen:
                yield (("upstreams", index, "targets", target_index), f'duplicate target "{addr}"')
            seen.add(addr)


def _listeners(config: GatewayConfig) -> Iterator[Finding]:
    gateway: list[tuple[FieldPath, str]] = []
    if config.listen is not None:
        gateway.append((("listen",), config.listen))
    gateway += [(("listeners", i, "listen"), lst.listen) for i, lst in enumerate(config.listeners)]
    admin_host, _, admin_port = config.admin.listen.rpartition(":")
    wildcard = {"0.0.0.0", "[::]"}
    seen: dict[str, FieldPath] = {}
    for path, addr in gateway:
        host, _, port = addr.rpartition(":")
        same_host = host == admin_host or host in wildcard or admin_host in wildcard
        if port == admin_port and port != "0" and same_host:
            yield (
                ("admin", "listen"),
                f'conflicts with {_dotted(path)} "{addr}"; the admin listener needs its own port',
            )
        if port != "0" and addr in seen:
            yield path, f'"{addr}" is also {_dotted(seen[addr])}; each listener needs its own port'
        seen.setdefault(addr, path)


def _dotted(path: FieldPath) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


# RFC 9113 6.5.2 (and a header list too small for any real client).
_HTTP2_BOUNDS = (
    ("max_header_list_size", 1024, 2**32 - 1),
    ("initial_stream_window", 65_535, 2**31 - 1),
    ("initial_connection_window", 65_535, 2**31 - 1),
    ("max_frame_size", 16_384, 16_777_215),
)


def _http2_sizes(config: GatewayConfig) -> Iterator[Finding]:
    for name, low, high in _HTTP2_BOUNDS:
        value = getattr(config.http2, name)
        if not low <= value <= high:
            yield ("http2", name), f"expected a size from {low} to {high} bytes, got {value}"


def _log_store(config: GatewayConfig, base_dir: str) -> Iterator[Finding]:
    store = None
    try:
        store = parse_store_url(config.log.store, base_dir)
    except ValueError as exc:
        yield ("log", "store"), str(exc)
    yield from log_cluster_problems(config.log.cluster, config.log.keeper_path, store)
    if config.log.spool_max_bytes < _MIN_SPOOL_BYTES:
        yield ("log", "spool_max_bytes"), f"expected a size >= 1m, got {config.log.spool_max_bytes}"


# A full batch (10,000 records of ~200 bytes) must fit into the spool.
_MIN_SPOOL_BYTES = 1024 * 1024


def _plugin_checks(
    config: GatewayConfig, base_dir: str, invalid: Collection[FieldPath]
) -> Iterator[Finding]:
    for index, route in enumerate(config.routes):
        plugins: FieldPath = ("routes", index, "plugins")
        if any(p[:3] == plugins and len(p) <= 4 for p in invalid):
            # A plugin name that failed may be a misspelt one the others look for
            # ("kee-auth" for rate-limit's by: consumer): judging them would guess.
            continue
        if any(p[:2] == plugins[:2] and p[2:3] != ("plugins",) for p in invalid):
            continue  # plugins look at the route's methods, paths, ...: some failed
        for name, plugin_config in route.plugins.items():
            plugin = get_plugin(name)
            path: FieldPath = ("routes", index, "plugins", name)
            if plugin is None or any(p[: len(path)] == path for p in invalid):
                continue  # a config that failed its schema holds stand-ins
            context = RouteContext(config=config, route=route, path=path, base_dir=base_dir)
            for relative, message in plugin.check(plugin_config, context):
                yield (*path, *relative), message
