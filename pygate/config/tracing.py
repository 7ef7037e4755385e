"""The `tracing:` section: W3C trace context and OTLP span export (core-rs/src/otlp/).

    tracing:
      sample_ratio: 1.0          # new traces (and all, with parent_based: false)
      parent_based: true         # follow a caller's sampled flag
      response_header: false     # answer with the gateway's traceparent too
      otlp:
        endpoint: http://127.0.0.1:4318   # HTTP: POST /v1/traces unless a path is given
        protocol: http           # or grpc (TraceService/Export over h2c)
        headers: {authorization: "Bearer ${OTLP_TOKEN}"}   # secrets: never logged/shown
        timeout: 10s

Traces are always propagated to upstreams; spans are exported only with `otlp`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from pygate.config.units import SECRET_MARK, Duration

Ratio = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)]
Endpoint = Annotated[
    str,
    msgspec.Meta(pattern=r"^http://[^/\s]+(/\S*)?$", description="http://HOST:PORT[/PATH]"),
]
HeaderValue = Annotated[str, msgspec.Meta(extra={SECRET_MARK: True})]
HeaderName = Annotated[str, msgspec.Meta(pattern=r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")]


class Otlp(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    endpoint: Endpoint
    protocol: Literal["http", "grpc"] = "http"
    headers: dict[HeaderName, HeaderValue] = {}
    timeout: Duration = Duration(10_000)
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=100_000)] = 512
    flush_interval: Duration = Duration(1_000)


class Tracing(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    otlp: Otlp | None = None
    sample_ratio: Ratio = 1.0
    parent_based: bool = True
    response_header: bool = False
    service_name: Annotated[str, msgspec.Meta(min_length=1)] = "pygate"


def compile_tracing(t: Tracing | None) -> dict[str, Any] | None:
    """The core's `tracing` object (core-rs/src/otlp/mod.rs TracingConfig)."""
    if t is None:
        return None
    otlp = None
    if t.otlp is not None:
        otlp = {
            "endpoint": t.otlp.endpoint,
            "protocol": t.otlp.protocol,
            "headers": [[k, v] for k, v in t.otlp.headers.items()],
            "timeout_ms": max(1, int(t.otlp.timeout)),
            "batch_size": t.otlp.batch_size,
            "flush_interval_ms": max(1, int(t.otlp.flush_interval)),
        }
    return {
        "otlp": otlp,
        "sample_ratio": t.sample_ratio,
        "parent_based": t.parent_based,
        "response_header": t.response_header,
        "service_name": t.service_name,
    }
