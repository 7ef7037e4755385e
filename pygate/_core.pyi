"""Typed surface of the Rust extension `pygate._core`.

This stub is the whole Rust/Python boundary. Python hands the core a *core config*
(JSON text, built by `pygate.config.compile`), drains call records in batches and
reads counters. Nothing here is called per request, except `PluginCall` for routes
that have Python plugins (their `python` field below is not null), and the token counts
for AI calls that need them (no usage from the provider, or a tokens-per-minute limit).

Core config (JSON object; every duration is in milliseconds):

    {
      "listen": "127.0.0.1:8080",             # optional: one plain listener, first
      "listeners": [{"addr": "0.0.0.0:8443",
                     "tls": {"certificates": [{"cert": "/abs/site.pem",
                                               "key": "/abs/site.key",
                                               "names": ["*.example.com"]}],
                             "strict_sni": false, "min_version": "1.2" | "1.3",
                             "handshake_timeout_ms": 10000,
                             "client_auth": {"ca": "/abs/ca.pem",
                                             "required": true} | null} | null}],
      "workers": 1,
      "limits": {"max_header_bytes": 16384, "max_uri_bytes": 8192,
                 "max_body_bytes": 10485760, "header_timeout_ms": 60000,
                 "keepalive_timeout_ms": 75000,
                 "client_body_timeout_ms": 60000, "send_timeout_ms": 60000,
                 "http2": {"h2c": false, "over_tls": true, "max_concurrent_streams": 128,
                           "max_header_list_size": 32768,
                           "initial_stream_window": 262144,
                           "initial_connection_window": 1048576,
                           "max_frame_size": 16384, "max_pending_reset_streams": 20,
                           "max_local_error_resets": 256},
                 "auth_failures": {"rate": 1, "per_ms": 1000, "burst": 100,
                                   "max_tracked": 65536} | null},
      "http": {"merge_slashes": true,
               "escaped_slashes": "reject" | "keep" | "decode",
               "underscores_in_headers": false,
               "trusted_proxies": ["10.0.0.0/8"]},
      "log_buffer_capacity": 262144, "record_calls": true,
      "upstreams": [{"name": "items",
                     "targets": [{"addr": "127.0.0.1:9001", "weight": 1}],
                     "balance": "round_robin" | "weighted" | "least_conn",
                     "connect_timeout_ms": 3000, "read_timeout_ms": 60000,
                     "retries": 2, "max_fails": 1, "fail_cooldown_ms": 10000,
                     "keepalive": 256, "scheme": "http" | "https",
                     "protocol": "http1" | "h2" | "h2c",
                     "ca_file": "/abs/ca.pem" | null, "tls_verify": true,
                     "sni": "api.internal" | null,
                     "health_check": {"type": "http" | "tcp", "path": "/health",
                                      "host": null, "interval_ms": 5000,
                                      "timeout_ms": 1000, "successes": 2,
                                      "failures": 3, "expected_statuses": []} | null}],
      "consumers": [{"name": "alice", "keys": ["alice-key-1"]}],
      "routes": [{"name": "items-api", "hosts": [], "paths": ["/api/items/{id}"],
                  "methods": ["GET"], "upstream": "items", "preserve_host": false,
                  "https_redirect_port": 443 | null,
                  "websocket": {"idle_timeout_ms": 60000, "max_lifetime_ms": 86400000,
                                "max_frame_size": 1048576} | null,
                  "plugins": {
                    "ip-restriction": {"allow": ["10.0.0.0/8"], "deny": []},
                    "cors": {"allow_origins": ["https://app.example.com"],
                             "allow_methods": [], "allow_headers": [],
                             "expose_headers": [], "allow_credentials": false,
                             "max_age_s": 600 | null},
                    "key-auth": {"hide_credentials": true},
                    "basic-auth": {"hide_credentials": true},
                    "jwt": {"secrets": ["..."], "jwks": [{"kty": "RSA", ...}],
                            "consumer_claim": "sub", "issuer": null,
                            "audience": null, "leeway_s": 0,
                            "require_exp": true, "hide_credentials": true},
                    "rate-limit": {"rate": 100, "per_ms": 1000, "burst": 20,
                                   "by": "consumer" | "ip" | "route"}},
                  "python": {"access": true, "response": false, "log": false,
                             "timeout_ms": 5000} | null,
                  "inject_headers": [["x-internal-secret", "..."]]}]
    }

`listeners`: the TLS files are read (and checked: PEM, validity dates, key matching
the certificate) at every compile, so reload() picks up renewed certificates for new
handshakes. `https_redirect_port`: calls over plain HTTP get a 308 to https:// there.
`websocket`: WebSocket handshakes are proxied as WebSockets (core-rs/src/upgrade/); each
value > 0 and the upstream http1, else a config error; null: Upgrade headers are dropped.
`plugins`: the route's native plugins by name, any of them, each with its own config
(core-rs/src/plugins/<name>.rs; the value its Python twin's `to_core` gives). Absent or
{}: none. An unknown name is a config error. `python`: which phases the route's Python
plugins implement (null: the route never calls Python). `inject_headers`: set on every
request the route sends upstream.

Call records (JSONEachRow keys, or RowBinary columns) are the columns of
pygate.requests in the order `requests_columns()` returns; JSONEachRow writes `ts` as
unix seconds with a millisecond fraction.
"""

from typing import Any

def requests_row_binary_to_native(rows: bytes) -> bytes:
    """Whole `pygate.requests` rows in RowBinary -> one Native block (same rows, same
    order). chDB inserts Native for about two thirds of RowBinary's CPU. Raises ValueError
    when the data ends inside a row."""

def requests_columns() -> list[tuple[str, str]]:
    """(name, ClickHouse type) of each column of pygate.requests, in the order the
    RowBinary, JSONEachRow and Native encoders and `PluginCall.record` use (one table in
    core-rs/src/records/columns.rs)."""

def version() -> str:
    """Version of the Rust core."""

# Token counts (core-rs/src/tokens/) with the model's own BPE (OpenAI's o200k_base and
# cl100k_base ranks, compiled in; which model uses which is tiktoken's table). Each returns
# None for a model with no known tokenizer (or a text the counter declines: a run of
# letters, spaces or symbols over 16 KiB), and the caller estimates. Counts of 4 KiB or
# more, and the first count of an encoding (it parses the ranks once), release the GIL.

def token_encoding(model: str) -> str | None:
    """The encoding of a provider's model name ("gpt-4o-mini", "ft:gpt-4o:org:x:id",
    Azure's "gpt-35-turbo"): "o200k_base" or "cl100k_base"; else None."""

def count_tokens(model: str, text: str) -> int | None:
    """Tokens of `text`; special-token spellings such as "<|endoftext|>" are plain text."""

def count_chat_tokens(model: str, messages_json: bytes) -> int | None:
    """Prompt tokens of a chat `messages` list given as JSON, by OpenAI's published rule:
    3 per message + its role and content, a name + 1, each tool call's name and arguments
    + 1, 3 for the reply's priming. None also when a content part is not text (an image).
    Raises ValueError when the JSON is not a list of message objects."""

def count_completion_tokens(
    model: str, content: str, tool_calls: list[tuple[str, str]] = ...
) -> int | None:
    """Completion tokens of an answer: its text, and per tool call (name, arguments) their
    tokens + 1."""

def check_config(config_json: str) -> None:
    """Compile a core config without serving it.

    Raises ValueError naming the bad field (for example
    "routes[1].paths[0]: conflicts with route 'a' path '/x/{id}'").
    """

class Gateway:
    """The data plane: listeners, worker threads and the call-record buffer."""

    def __init__(self, config_json: str) -> None:
        """Compile the config. Raises ValueError as `check_config` does."""

    def start(self) -> None:
        """Bind the listener and start `workers` threads. Raises OSError if binding fails."""

    @property
    def local_addr(self) -> str:
        """The first listener's bound address as "host:port" (useful with port 0). Only
        after start()."""

    @property
    def local_addrs(self) -> list[str]:
        """Every listener's bound address ("listen" first, then "listeners" in order)."""

    def reload(self, config_json: str) -> None:
        """Swap in a new config atomically; requests in flight finish on the old one.

        Raises ValueError and keeps the old config if the new one does not compile.
        A changed `listen` or `workers` needs a restart and raises ValueError.
        """

    def drain_records(
        self, max_records: int, format: str = "JSONEachRow"
    ) -> tuple[int, bytes, bytes]:
        """Take up to `max_records` call records: (count, data, row_ends).

        `format` is "JSONEachRow" or "RowBinary" (columns in pygate.requests order).
        `row_ends` holds one little-endian uint32 per row: the offset just past that row
        in `data` (`memoryview(row_ends).cast("I")`), for splitting a refused batch.
        """

    def plugin_wakeup_fd(self) -> int:
        """A descriptor that turns readable when plugin calls wait; give it to
        `loop.add_reader` and call `take_plugin_calls` from the callback."""
    def take_plugin_calls(self, max_calls: int = 4096) -> list[PluginCall]:
        """Take waiting plugin calls (and re-arm the wakeup descriptor)."""
    def pending_records(self) -> int:
        """Records waiting in the buffer."""

    def stats(self) -> dict[str, int]:
        """Live counters.

        Keys: requests_total, responses_1xx, responses_2xx, responses_3xx,
        responses_4xx, responses_5xx, rate_limited_total, upstream_errors_total,
        auth_failures_total, auth_blocked_total, records_dropped, records_pending,
        connections_active, reloads_total, plugin_log_dropped.
        """

    def route_metrics(self) -> list[dict[str, Any]]:
        """Per-route counters (routes with at least one call), for /metrics:
        {"route": str, "responses": [1xx, 2xx, 3xx, 4xx, 5xx],
         "latency_us": {"buckets": [int, ...], "sum": int},
         "upstream_latency_us": {"buckets": [...], "sum": int}}. Buckets are not
        cumulative; bucket i counts calls up to latency_bounds_us()[i], the last one those
        above every bound. At most 256 route names get their own entry over the process's
        life; later ones are summed under "_other"."""

    def upstream_health(self) -> list[dict[str, Any]]:
        """Every target of every upstream, in config order: {"upstream": str,
        "target": "host:port", "healthy": bool (takes requests), "ejected": bool
        (passive health), "probe": null (no active checks) | {"healthy": bool,
        "passed": int, "failed": int, "transitions": int, "last_failure": "" |
        "connect_failed" | "timeout" | "unexpected_status" | "bad_response",
        "last_status": int | null}}. Probes run on one core thread (upstream/health.rs)
        while the gateway is started."""

    @staticmethod
    def latency_bounds_us() -> list[int]:
        """Upper bounds of the route_metrics histogram buckets, in microseconds."""

    def shutdown(self, grace_ms: int) -> bool:
        """Stop accepting, let in-flight requests finish for up to `grace_ms`.

        Blocks with the GIL released. Returns True if everything finished in time.
        Call records produced meanwhile stay drainable afterwards.
        """

class Bench:
    """One `pygate bench` load-test run; it starts on its own threads when created.

    `spec_json` keys: url, connections, threads, duration_ms | requests, rate (req/s,
    open loop; omit for closed loop), method, headers ([[name, value], ...]), warmup_ms,
    timeout_ms. `body` is sent with every request. Raises ValueError for a bad spec.
    """

    def __init__(self, spec_json: str, body: bytes) -> None: ...
    def progress(self) -> tuple[int, int, bool, bool]:
        """(measured requests, transport errors, measuring, finished) so far."""

    def wait(self) -> str:
        """Block (GIL released) until the run ends; the report as JSON text.

        Report keys: url, mode ("closed"|"open"), connections, threads, target_rate,
        duration_s, requests, requests_per_s, bytes_read, statuses {code: n},
        errors {kind: n}, latency_ms {min, mean, stdev, p50, p75, p90, p99, p99.9,
        p99.99, max}. Raises ValueError if the spec cannot run (bad URL, ...).
        """

class HotPaths:
    """The core's per-request functions, one call at a time, over a compiled core config.

    For micro benchmarks (benchmarks/micro/) and probes; each call runs the same code a
    request does, plus the pyo3 call itself.
    """

    def __init__(self, config_json: str) -> None: ...
    def route_match(self, host: str, path: str, method: str) -> str | None:
        """The route name chosen, or None for no route / method not allowed."""

    def key_lookup(self, key: str) -> str | None:
        """The consumer owning `key`, or None."""

    def rate_limit_check(self, route: str, key: str) -> bool:
        """Take one token from `route`'s limiter for `key`; True if allowed."""

    def encode_record(self, format: str) -> int:
        """Encode one typical call record ("RowBinary" or "JSONEachRow"); its size."""

    def sample_record(self, format: str) -> bytes:
        """That typical record's bytes (the same record on every call)."""

class PluginCall:
    """A call waiting for a route's Python plugins, in one phase.

    access and response calls need exactly one reply (a second raises RuntimeError);
    log calls need none. A call dropped without a reply is answered 500 plugin_error by
    the core; one not answered within `timeout_ms` + 1 s is answered 504 plugin_timeout.
    """

    phase: str  # "access" | "response" | "log"
    route: str
    request_id: str
    # The request (access and response phases); headers as (name, latin-1 value).
    method: str
    uri: str  # path?query as the client sent it
    client_ip: str
    consumer: str | None
    headers: list[tuple[str, str]]
    body: bytes  # read whole for routes with access plugins; b"" otherwise
    timeout_ms: int
    # The upstream's response (response phase). response_body is None when streamed:
    # text/event-stream, no Content-Length, or longer than limits.max_body_bytes.
    status: int
    response_headers: list[tuple[str, str]]
    response_body: bytes | None
    # The finished call record (log phase): the columns of pygate.requests by name (`ts`
    # in unix seconds with a millisecond fraction, `client_ip` None when unknown), plus
    # `ts_ms`: the same start in integer milliseconds.
    record: dict[str, object]

    def continue_request(
        self,
        *,
        uri: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
        upstream: str | None = None,
    ) -> None:
        """access: go on to the upstream (another configured one if `upstream` is set),
        with whatever is not None replaced (headers: the whole new list)."""
    def continue_response(
        self,
        *,
        status: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes | None = None,
    ) -> None:
        """response: send the upstream's response with these changes (a body only when
        response_body was not None)."""
    def answer(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        """access: answer directly; the upstream is not called and no response phase runs."""
    def fail(
        self,
        status: int,
        kind: str,
        message: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Refuse with the gateway's JSON error (kind: snake_case, stored as error_kind)."""
