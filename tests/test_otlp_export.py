"""Spans exported over OTLP/HTTP to a real receiver (tests/support/otlp_receiver.py): one
span per request, its parent the caller's span, its attributes the call's; the upstream
sees the gateway's span as its parent; sampling 0 exports nothing; a dead collector leaves
requests unaffected and the lost spans counted."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support.client import get
from support.configs import simple_config
from support.gateway import Gateway, running
from support.net import free_port, wait_until
from support.otlp_receiver import OtlpGrpcReceiver, OtlpReceiver, attributes

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TOKEN = "otlp-secret-token-4711"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    r = OtlpReceiver().start()
    yield r
    r.stop()


def tracing(endpoint: str, **extra) -> dict:
    return {
        "otlp": {
            "endpoint": endpoint,
            "headers": {"authorization": f"Bearer {TOKEN}"},
            "flush_interval": "100ms",
            "timeout": "2s",
        },
        **extra,
    }


def test_one_span_per_request_with_the_callers_parent(upstreams, tmp_path, receiver):
    cfg = simple_config(upstreams, tracing=tracing(receiver.endpoint))
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        seen = []
        for i in range(5):
            span_hex = f"{i + 1:016x}"
            resp = get(
                gw.url(f"/echo/t{i}"),
                headers={"traceparent": f"00-{TRACE}-{span_hex}-01", "tracestate": "k=v"},
            )
            assert resp.status == 200
            seen.append((span_hex, resp.upstream_headers()["traceparent"]))
        assert wait_until(lambda: len(receiver.snapshot()) >= 5, timeout=20)
        spans = receiver.snapshot()
        assert len(spans) == 5, "one span per request"
        by_parent = {s.parent_span_id.hex(): s for s in spans}
        for caller_span, upstream_tp in seen:
            span = by_parent[caller_span]
            assert span.trace_id.hex() == TRACE
            # The upstream's parent is the gateway's span: the one exported.
            assert upstream_tp.split("-")[2] == span.span_id.hex()
            assert span.trace_state == "k=v"
            attrs = attributes(span)
            assert attrs["http.request.method"] == "GET"
            assert attrs["http.response.status_code"] == 200
            assert attrs["pygate.route"] == "echo"
            assert attrs["pygate.upstream.address"] == upstreams.addr("echo")
            assert attrs["url.path"].startswith("/echo/t")
            assert attrs["pygate.upstream.ttfb_us"] > 0
            assert span.end_time_unix_nano >= span.start_time_unix_nano > 0
            assert span.name == "GET echo"
        assert receiver.resources[0].attributes[0].value.string_value == "pygate"
        # The exporter's headers reached the collector (and only there: see tests/security).
        assert receiver.headers[0]["authorization"] == f"Bearer {TOKEN}"
        assert receiver.headers[0]["content-type"] == "application/x-protobuf"
        assert gw.status()["tracing_spans_exported_total"] == 5


def test_a_new_trace_is_a_root_span(upstreams, tmp_path, receiver):
    cfg = simple_config(upstreams, tracing=tracing(receiver.endpoint))
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        resp = get(gw.url("/echo/root"))
        tp = resp.upstream_headers()["traceparent"]
        assert wait_until(lambda: len(receiver.snapshot()) >= 1, timeout=20)
        (span,) = receiver.snapshot()
        assert span.parent_span_id == b""
        assert tp == f"00-{span.trace_id.hex()}-{span.span_id.hex()}-01"


def test_sampling_zero_exports_nothing(upstreams, tmp_path, receiver):
    cfg = simple_config(
        upstreams, tracing=tracing(receiver.endpoint, sample_ratio=0.0, parent_based=False)
    )
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        for i in range(10):
            resp = get(
                gw.url(f"/echo/s{i}"), headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"}
            )
            assert resp.status == 200
            # Not recorded: the upstream is told so.
            assert resp.upstream_headers()["traceparent"].endswith("-00")
        gw.stop()
    assert receiver.snapshot() == []


def test_a_dead_collector_leaves_requests_alone_and_counts_the_loss(upstreams, tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    cfg = simple_config(upstreams, tracing=tracing(dead))
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        for i in range(20):
            assert get(gw.url(f"/echo/d{i}")).status == 200
        assert wait_until(lambda: gw.status()["tracing_spans_dropped_total"] >= 20, timeout=20)
        status = gw.status()
        assert status["tracing_export_failures_total"] >= 1
        assert status["tracing_spans_exported_total"] == 0
        assert status["responses_2xx"] == 20
        metrics = gw.admin_text("/metrics")
        assert "pygate_tracing_spans_dropped_total" in metrics


def test_the_response_header_is_sent_only_when_configured(upstreams, tmp_path, receiver):
    cfg = simple_config(upstreams, tracing=tracing(receiver.endpoint, response_header=True))
    with running(Gateway(tmp_path / "gw", cfg)) as gw:
        resp = get(gw.url("/echo/h"), headers={"traceparent": f"00-{TRACE}-{CALLER_SPAN}-01"})
        assert resp.header("traceparent") == resp.upstream_headers()["traceparent"]


def test_grpc_export_reaches_a_grpcio_collector(upstreams, tmp_path):
    grpc_receiver = OtlpGrpcReceiver().start()
    try:
        cfg = simple_config(upstreams, tracing=tracing(grpc_receiver.endpoint))
        cfg["tracing"]["otlp"]["protocol"] = "grpc"
        with running(Gateway(tmp_path / "gw", cfg)) as gw:
            for i in range(3):
                resp = get(
                    gw.url(f"/echo/g{i}"),
                    headers={"traceparent": f"00-{TRACE}-{i + 1:016x}-01"},
                )
                assert resp.status == 200
            assert wait_until(lambda: len(grpc_receiver.snapshot()) >= 3, timeout=20)
            spans = grpc_receiver.snapshot()
            assert len(spans) == 3
            assert {s.parent_span_id.hex() for s in spans} == {f"{i + 1:016x}" for i in range(3)}
            assert all(s.trace_id.hex() == TRACE for s in spans)
            assert attributes(spans[0])["pygate.route"] == "echo"
            # The exporter's headers travel as gRPC metadata.
            assert grpc_receiver.headers[0]["authorization"] == f"Bearer {TOKEN}"
            assert gw.status()["tracing_spans_exported_total"] == 3
            assert gw.status()["tracing_export_failures_total"] == 0
    finally:
        grpc_receiver.stop()
