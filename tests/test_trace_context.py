"""W3C Trace Context through the gateway: the upstream sees the caller's trace continued
with the gateway's span as parent, or a new trace when the caller's traceparent is missing
or malformed (the spec's receiver rules; core-rs/src/trace_context.rs has them all)."""

from __future__ import annotations

import re

import pytest
from support.client import get

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
VALID = f"00-{TRACE}-{CALLER_SPAN}-01"
SHAPE = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def _seen(gw, headers: dict[str, str]) -> dict[str, str]:
    resp = get(gw.url("/echo/trace"), headers=headers)
    assert resp.status == 200
    return resp.upstream_headers()


def test_a_valid_traceparent_is_continued_with_the_gateways_span(gw):
    seen = _seen(gw, {"traceparent": VALID, "tracestate": "congo=t61rcWkgMzE"})
    m = SHAPE.match(seen["traceparent"])
    assert m, seen["traceparent"]
    trace_id, parent, flags = m.groups()
    assert trace_id == TRACE
    assert parent != CALLER_SPAN and parent != "0" * 16, "the gateway's own span is the parent"
    assert flags == "01"
    assert seen["tracestate"] == "congo=t61rcWkgMzE"


def test_each_call_gets_its_own_gateway_span(gw):
    a = SHAPE.match(_seen(gw, {"traceparent": VALID})["traceparent"])
    b = SHAPE.match(_seen(gw, {"traceparent": VALID})["traceparent"])
    assert a and b and a.group(2) != b.group(2)


@pytest.mark.parametrize(
    "bad",
    [
        f"ff-{TRACE}-{CALLER_SPAN}-01",  # version ff is invalid
        f"00-{'0' * 32}-{CALLER_SPAN}-01",  # all-zero trace id
        f"00-{TRACE}-{'0' * 16}-01",  # all-zero parent id
        f"00-{TRACE[:-1]}-{CALLER_SPAN}-01",  # short trace id
        f"00-{TRACE}-{CALLER_SPAN}1-01",  # long parent id
        f"00-{TRACE}-{CALLER_SPAN}-01-extra",  # version 00 has no more fields
        f"00-{TRACE[:-1]}g-{CALLER_SPAN}-01",  # not hex
        f"00-{TRACE.upper()}-{CALLER_SPAN}-01",  # uppercase hex
        "garbage",
    ],
)
def test_a_malformed_traceparent_starts_a_new_trace_and_drops_tracestate(gw, bad):
    seen = _seen(gw, {"traceparent": bad, "tracestate": "congo=t61rcWkgMzE"})
    m = SHAPE.match(seen["traceparent"])
    assert m, seen["traceparent"]
    assert m.group(1) not in (TRACE, TRACE.lower(), "0" * 32)
    assert m.group(2) != CALLER_SPAN
    assert "tracestate" not in seen


def test_a_later_version_is_read_by_its_first_fields(gw):
    seen = _seen(gw, {"traceparent": f"cc-{TRACE}-{CALLER_SPAN}-01-future"})
    m = SHAPE.match(seen["traceparent"])
    assert m and m.group(1) == TRACE, seen["traceparent"]


def test_a_missing_traceparent_starts_a_new_trace_per_call(gw):
    a = SHAPE.match(_seen(gw, {})["traceparent"])
    b = SHAPE.match(_seen(gw, {})["traceparent"])
    assert a and b
    assert a.group(1) != b.group(1)
    assert a.group(1) != "0" * 32


def test_the_trace_is_not_in_the_clients_response_by_default(gw):
    resp = get(gw.url("/echo/trace"), headers={"traceparent": VALID})
    assert resp.header("traceparent") is None
