"""What the suite measures. Every peer is configured to do the same work per scenario.

plain       proxy only
auth        key-auth + rate-limit (limit far above the load) + a call log per request
routes_1k   1,000 routes; the request matches one in the middle
keys_100k   key-auth with 100,000 consumers' keys
post_16k    16 KiB POST bodies streamed to the upstream
sse         a server-sent-events response streamed through unbuffered
rl_accuracy requests admitted by a 2,000 req/s limit over the run, against the exact budget
py_access   pygate only: a trivial Python `access` plugin (adds a header) on the route
jwt_rs256   pygate only: jwt auth, an RS256 token verified against a JWKS key per request
"""

from __future__ import annotations

from dataclasses import dataclass, field

from benchmarks.suite import jwt_keys

API_KEY = "bench-key-050000"
ROUTES = 1_000
KEYS = 100_000
POST_BYTES = 16 * 1024
ACCURACY_RATE = 2_000
# A tenth of a second of burst: with a one-token bucket any pause of the proxy's thread
# longer than one emission interval (0.5 ms) would forfeit tokens, which measures the
# scheduler rather than the limiter.
ACCURACY_BURST = 200


@dataclass(frozen=True)
class Scenario:
    name: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    body: bytes = b""
    # Judged by admitted requests against the limit, not by speed.
    accuracy: bool = False
    # Peers that can do this work at all (empty: every peer). nginx-light and HAProxy have
    # no Python plugins and no JWT verification, so those scenarios are pygate's alone.
    only: tuple[str, ...] = ()


SCENARIOS = {
    s.name: s
    for s in [
        Scenario("plain", "/plain/item"),
        Scenario("auth", "/auth/item", {"apikey": API_KEY}),
        Scenario("routes_1k", f"/svc{ROUTES // 2}/items/42"),
        Scenario("keys_100k", "/keys/item", {"apikey": API_KEY}),
        Scenario("post_16k", "/plain/upload", method="POST", body=b"x" * POST_BYTES),
        Scenario("sse", "/sse/stream"),
        Scenario("rl_accuracy", "/limited/item", {"apikey": API_KEY}, accuracy=True),
        Scenario("py_access", "/py/item", only=("pygate",)),
        Scenario("jwt_rs256", "/jwt/item", jwt_keys.bearer_header(), only=("pygate",)),
    ]
}


def consumer_keys(count: int) -> list[tuple[str, str]]:
    """(consumer name, key); the scenarios' key API_KEY is among them."""
    return [(f"c{i:06d}", f"bench-key-{i:06d}") for i in range(count)]


# The upstream's SSE response: 20 events of a realistic size, sent as one stream.
SSE_BODY = "".join(
    f'id: {i}\nevent: tick\ndata: {{"n": {i}, "text": "event number {i} of twenty"}}\n\n'
    for i in range(20)
).encode()
UPSTREAM_JSON = b'{"ok":true,"service":"upstream","note":"small static response"}\n'
