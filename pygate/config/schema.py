"""The user-facing config schema (the YAML file), as msgspec Structs.

Defaults live here and only here. Unknown fields are rejected everywhere: a typo such
as `retires: 3` must fail loudly rather than silently fall back to a default.
Plugin configs are validated separately by their plugin (see pygate.plugins).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from pygate.config.ai_schema import AiSettings
from pygate.config.cluster import Cluster
from pygate.config.listeners import Listener
from pygate.config.tracing import Tracing
from pygate.config.units import (
    SECRET_MARK,
    Duration,
    HostPattern,
    HttpMethod,
    ListenAddr,
    Name,
    RoutePath,
    SecretText,
    Size,
    TargetAddr,
)

Positive = Annotated[int, msgspec.Meta(ge=1)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
Key = Annotated[str, msgspec.Meta(min_length=1)]
# A secret (an API key, a password): write-only in the admin API, which shows a
# fingerprint instead (pygate/config/secrets.py). Plugins mark their secrets with it.
Secret = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        extra={SECRET_MARK: True},
        # Not writeOnly: reads do return the field, holding the fingerprint.
        description='a secret: reads show its fingerprint "sha256:<12 hex>"; '
        "writing a fingerprint keeps the secret that has it",
    ),
]


class _Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    pass


class AuthFailureLimit(_Section):
    """Failed authentications per client address (an IPv6 one per /64): `burst` at once,
    then `rate` per `per`; past that, 429 on authenticated routes until a token is back."""

    rate: Positive = 1
    per: Duration = Duration(1_000)
    burst: Positive = 100
    # Addresses tracked at most (memory bound); past that, new ones share one bucket.
    max_addresses: Positive = 65_536


class Limits(_Section):
    max_header_bytes: Size = Size(16 * 1024)
    max_uri_bytes: Size = Size(8 * 1024)
    max_body_bytes: Size = Size(10 * 1024 * 1024)
    # From a request head's first byte (a connection's first request: from the accept)
    # to the head complete, then 408 (nginx's client_header_timeout).
    header_timeout: Duration = Duration(60_000)
    # How long a connection with no request in flight stays open (nginx's
    # keepalive_timeout); HTTP/2 connections are told GOAWAY.
    keepalive_timeout: Duration = Duration(75_000)
    # nginx's: the longest wait between two reads of a request body (then 408, never the
    # upstream's fault), and between two writes to a client that stopped reading (then
    # the connection is closed).
    client_body_timeout: Duration = Duration(60_000)
    send_timeout: Duration = Duration(60_000)
    # On by default, generous enough for a client with a wrong key; null: off.
    auth_failures: AuthFailureLimit | None = msgspec.field(default_factory=AuthFailureLimit)


class HttpRules(_Section):
    """How the gateway reads a request before routing it (README: "Request handling")."""

    # "//a///b" is routed and forwarded as "/a/b" (nginx's merge_slashes).
    merge_slashes: bool = True
    # %2F, %5C and "\" in a path: reject (400), keep (forwarded as data, escaped) or
    # decode (to "/", before dot-segments are resolved). Like Envoy's
    # path_with_escaped_slashes_action.
    escaped_slashes: Literal["reject", "keep", "decode"] = "reject"
    # False: request headers with "_" in their name are dropped (nginx's default), since
    # CGI/WSGI upstreams read X_Consumer_Username as X-Consumer-Username.
    underscores_in_headers: bool = False
    # Peers (IP addresses or CIDR blocks) whose X-Forwarded-*, X-Real-IP and Forwarded
    # headers are kept, and whose X-Forwarded-For names the client. Empty: trust no one.
    trusted_proxies: list[str] = []


class Http2(_Section):
    """HTTP/2 on client connections (README: "HTTP/2"). The defaults resist the known
    floods: rapid reset, CONTINUATION floods, stream floods and oversized header lists."""

    # Cleartext HTTP/2 by prior knowledge (clients that start with the h2 preface).
    h2c: bool = False
    # Offered to TLS clients in ALPN.
    over_tls: bool = True
    # Streams open at once per connection; more are refused (REFUSED_STREAM).
    max_concurrent_streams: Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)] = 128
    # Names + values + 32 bytes per field. Above limits.max_header_bytes, so heads in
    # between get the pipeline's JSON 431; larger ones are refused by the codec.
    max_header_list_size: Size = Size(32 * 1024)
    # Flow control: how much request body a client may send ahead of the upstream.
    initial_stream_window: Size = Size(256 * 1024)
    initial_connection_window: Size = Size(1024 * 1024)
    max_frame_size: Size = Size(16 * 1024)
    # (The sizes' RFC 9113 bounds are checked in validate.py: Size has its own parser.)
    # Streams a client reset before the gateway took them up (rapid reset): past it,
    # GOAWAY ENHANCE_YOUR_CALM.
    max_pending_reset_streams: Positive = 20
    # Streams the gateway reset for a client's protocol errors, per connection.
    max_local_error_resets: Positive = 256
    # SETTINGS_ENABLE_CONNECT_PROTOCOL: WebSockets over HTTP/2 (RFC 8441 extended CONNECT),
    # taken only on routes with `websocket` set.
    extended_connect: bool = True


class AdminToken(_Section):
    """A named admin token: the name is the actor recorded in the audit log."""

    name: Name
    token: Secret


AllowedHost = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]


class Admin(_Section):
    listen: ListenAddr = ListenAddr("127.0.0.1:9180")
    # "token": every request needs `Authorization: Bearer <token>`; with neither `token`
    # nor `tokens` set, one is generated at first start and kept in `token_file`.
    # "none": no token at all; only allowed on a loopback listen.
    auth: Literal["token", "none"] = "token"
    # An empty string counts as "no token" so `token: ${ADMIN_TOKEN:-}` works.
    # Its holder is audited as actor "admin"; `tokens` adds named ones.
    token: SecretText | None = None
    tokens: list[AdminToken] = []
    # The generated token (mode 0600), read by the CLI too; relative to the config
    # file. null: pygate-admin.token in the directory of `state`.
    token_file: str | None = None
    # Host names (name, or name:port) the listener answers to besides its own address,
    # e.g. behind a reverse proxy. Any other Host is refused (DNS rebinding).
    allowed_hosts: list[AllowedHost] = []
    # SQLite file of the admin API's entity state; relative to the config file.
    # Or postgresql://user:pass@host:port/db (pgstate): checked in admin_checks.py.
    state: str = "pygate-admin.db"


class LogServeUser(_Section):
    name: Key
    password: SecretText = ""  # required (an empty one is refused), usually ${ENV}
    # null: follow log.serve.allow_writes (or `pygate logs serve --allow-writes`).
    allow_writes: bool | None = None


class LogServe(_Section):
    """`pygate logs serve`: the chDB store over ClickHouse's HTTP interface."""

    listen: ListenAddr = ListenAddr("127.0.0.1:8123")
    allow_writes: bool = False
    # Required: users with passwords. `users: []` (said explicitly) serves the
    # password-less user "default", on a loopback address only.
    users: list[LogServeUser] | None = None
    # Names the listener answers to besides its own address (Host / Origin), e.g.
    # behind a proxy: "logs.internal" or "logs.internal:443".
    allowed_hosts: list[AllowedHost] = []


# ----- log.daemon (pygate logd: the process that owns the log store) -----------------
class LogDaemon(_Section):
    # True (the default): `pygate serve` starts and supervises a `pygate logd` and hands
    # it batches over a Unix socket; the gateway process never opens the store itself,
    # so chDB's inserts, merges and memory stay off the proxy. False: the store (and the
    # shipper's inserts) in the gateway's own process.
    enabled: bool = True
    # False: use a logd started separately (`pygate logd --config X`, or shared by
    # several gateways); serve waits for it and spools meanwhile.
    spawn: bool = True
    # The socket (relative to the config file). Default: next to a chdb:// data
    # directory (DIR-logd.sock), else pygate-logd.sock by the config.
    socket: str | None = None
    # CPUs logd pins itself to (os.sched_setaffinity); empty: no pinning.
    cpus: list[Annotated[int, msgspec.Meta(ge=0, le=4095)]] = msgspec.field(default_factory=list)


# ----- end of log.daemon --------------------------------------------------------------


class LogSettings(_Section):
    # False: the core builds and keeps no call records (counters still count).
    enabled: bool = True
    store: str = "chdb://./pygate-data"
    # ClickHouse wants few large inserts: every insert makes a part in each table (and its
    # rollups) that background merges must fold in again.
    batch_size: Positive = 100_000
    flush_interval: Duration = Duration(1_000)
    buffer: Positive = 262_144
    retention_days: Positive = 30
    # Where batches wait while the store is unreachable; relative to the config file.
    # Default: next to a chdb:// data directory (DIR-spool), else pygate-spool.
    spool_dir: str | None = None
    spool_max_bytes: Size = Size(1024**3)  # at least 1m: one batch must fit
    # A ClickHouse cluster (remote_servers) for the tables: ON CLUSTER DDL, Replicated
    # engines under keeper_path (default /clickhouse/tables), Distributed tables with
    # the usual names. Server stores only (config/log_cluster.py).
    cluster: str | None = None
    keeper_path: str | None = None
    serve: LogServe = msgspec.field(default_factory=LogServe)
    daemon: LogDaemon = msgspec.field(default_factory=LogDaemon)


# A DNS name (or IP address) for TLS to send and verify.
TlsName = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")]


class Target(_Section):
    addr: TargetAddr
    weight: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1


ProbePath = Annotated[str, msgspec.Meta(pattern=r"^/[!-~]*$")]
ProbeHost = Annotated[str, msgspec.Meta(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]
HttpStatus = Annotated[int, msgspec.Meta(ge=100, le=599)]


class ActiveHealthCheck(_Section):
    """Probes the gateway sends to every target of the upstream, from one place (not per
    worker), only to the configured target addresses. A target that fails `failures`
    probes in a row takes no requests until it passes `successes` in a row; passive
    health (max_fails, fail_cooldown) applies as well."""

    # http: GET `path`, passes on an expected status; tcp: a connect passes.
    type: Literal["http", "tcp"] = "http"
    path: ProbePath = "/"
    # The probes' Host header; null: the target's address.
    host: ProbeHost | None = None
    interval: Duration = Duration(5_000)
    # Connect and response head; slower counts as a failed probe.
    timeout: Duration = Duration(1_000)
    successes: Positive = 2
    failures: Positive = 3
    # Empty: any 2xx or 3xx passes.
    expected_statuses: list[HttpStatus] = []


class HealthCheck(_Section):
    active: ActiveHealthCheck | None = None


class Upstream(_Section):
    name: Name
    targets: Annotated[list[TargetAddr | Target], msgspec.Meta(min_length=1)]
    balance: Literal["round_robin", "weighted", "least_conn"] = "round_robin"
    connect_timeout: Duration = Duration(3_000)
    read_timeout: Duration = Duration(60_000)
    retries: NonNegative = 2
    max_fails: Positive = 1
    fail_cooldown: Duration = Duration(10_000)
    keepalive: NonNegative = 256
    # How targets are reached. https verifies each target's certificate for the name in
    # `sni` (else the target's host) against the system's roots, or `ca_file`'s alone
    # (relative to this file); `tls_verify: false` turns that off and is logged at load.
    scheme: Literal["http", "https"] = "http"
    # h2: HTTP/2 over TLS (ALPN); h2c: HTTP/2 over plain TCP (prior knowledge, as gRPC).
    protocol: Literal["http1", "h2", "h2c"] = "http1"
    ca_file: Key | None = None
    tls_verify: bool = True
    sni: TlsName | None = None
    # null: passive health only (max_fails, fail_cooldown).
    health_check: HealthCheck | None = None


class BasicCredential(_Section):
    username: Annotated[str, msgspec.Meta(min_length=1, pattern="^[^:]+$")]
    # Plain text, compared in constant time; keep it out of the file with ${ENV_VAR}.
    password: Secret


class Consumer(_Section):
    name: Name
    # A consumer needs some credential: API keys (key-auth) and/or basic_auth. jwt
    # consumers are named by a token claim and need no entry here.
    keys: list[Secret] = []
    basic_auth: list[BasicCredential] = []


class WebSocket(_Section):
    """WebSocket proxying on a route (`websocket: true` takes these defaults). Without it a
    handshake loses its Upgrade headers and reaches the upstream as a plain GET. Each value
    must be > 0 (checked by the core)."""

    # No frame either way for this long: both sides get Close 1001.
    idle_timeout: Duration = Duration(60_000)
    # However busy, a socket is closed (1001) this long after its handshake.
    max_lifetime: Duration = Duration(86_400_000)
    # One frame's payload; a larger frame closes both sides with 1009.
    max_frame_size: Size = Size(1024**2)


class Route(_Section):
    name: Name
    paths: Annotated[list[RoutePath], msgspec.Meta(min_length=1)]
    upstream: str
    hosts: list[HostPattern] = []
    methods: list[HttpMethod] = []
    preserve_host: bool = False
    # On a plain-HTTP listener, answer 308 to the same URL on https:// (true: port 443,
    # or the HTTPS port); calls that came over TLS are served.
    https_redirect: bool | Annotated[int, msgspec.Meta(ge=1, le=65535)] = False
    # WebSocket handshakes proxied as WebSockets (APISIX's enable_websocket); off by default.
    websocket: WebSocket | bool = False
    # plugin name -> plugin config; each value is checked by its plugin's schema and
    # replaced by the validated Struct during loading.
    plugins: dict[str, Any] = {}


class GatewayConfig(_Section):
    # The plain-HTTP listener; optional when `listeners` has at least one entry (a
    # TLS-only gateway has none).
    listen: ListenAddr | None = None
    # More listeners, plain or TLS (pygate/config/listeners.py), e.g. 0.0.0.0:443.
    listeners: list[Listener] = []
    workers: Positive | None = None
    limits: Limits = msgspec.field(default_factory=Limits)
    http: HttpRules = msgspec.field(default_factory=HttpRules)
    http2: Http2 = msgspec.field(default_factory=Http2)
    shutdown_grace: Duration = Duration(10_000)
    # How long a route's Python plugins may take per phase of a call (504 plugin_timeout).
    plugin_timeout: Duration = Duration(5_000)
    admin: Admin = msgspec.field(default_factory=Admin)
    log: LogSettings = msgspec.field(default_factory=LogSettings)
    upstreams: list[Upstream] = []
    consumers: list[Consumer] = []
    routes: list[Route] = []
    # The AI gateway (pygate/ai): null = off.
    ai: AiSettings | None = None
    # ----- cluster: (helper "redis") ---------------------------------------------------
    # State shared by the nodes of a deployment: cluster-wide rate limits and AI budgets
    # on Redis (pygate/config/cluster.py holds the section and its checks).
    cluster: Cluster = msgspec.field(default_factory=Cluster)
    # ----- end cluster: -----------------------------------------------------------------

    # --- tracing (issue 13 item 4): trace context and OTLP export, pygate/config/tracing.py
    tracing: Tracing | None = None
    # --- end tracing
