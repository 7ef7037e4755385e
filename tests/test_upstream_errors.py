"""502 (nothing listening / connection dropped), 504 (read_timeout) and retries."""

from __future__ import annotations

from collections import Counter

from support.client import assert_json_error, get


def test_no_target_listening_is_502(gw):
    assert_json_error(get(gw.url("/dead/x")), 502, "upstream_unavailable")
    # ... and again once the target is ejected (max_fails reached): still a clean 502.
    assert_json_error(get(gw.url("/dead/y")), 502, "upstream_unavailable")
    assert get(gw.url("/echo/still-serving")).status == 200


def test_slow_upstream_is_504_after_read_timeout(gw):
    # The upstream sleeps 5s before its response head; the route's read_timeout is 500ms.
    resp = get(gw.url("/slow/x?mode=slow&delay=5&gate=t504"))
    assert_json_error(resp, 504, "upstream_timeout")
    assert get(gw.url("/echo/still-serving")).status == 200


def test_connect_timeout_is_504(gw):
    # The target's accept queue is full, so the connect hangs until connect_timeout (500ms).
    assert_json_error(get(gw.url("/blackhole/x")), 504, "upstream_timeout")
    assert get(gw.url("/echo/still-serving")).status == 200


def test_upstream_closing_the_connection_is_502(gw):
    resp = get(gw.url("/echo/x?mode=close"))
    assert_json_error(resp, 502, "upstream_unavailable")
    assert get(gw.url("/echo/still-serving")).status == 200


def test_upstream_error_statuses_are_passed_through(gw):
    resp = get(gw.url("/echo/x?mode=status&code=503"))
    assert resp.status == 503
    # The upstream's own body, not a gateway error document.
    assert resp.json()["target"] == "echo"


def test_connection_failure_is_retried_on_another_target(gw):
    # Targets: [dead, live], retries 2: every request must succeed on the live one.
    results = [get(gw.url(f"/retry/{i}")) for i in range(20)]
    assert [r.status for r in results] == [200] * 20
    assert Counter(r.json()["target"] for r in results) == {"live": 20}


def test_failed_target_is_ejected_for_fail_cooldown(gw):
    # Targets [dead, live], retries 0, max_fails 1, fail_cooldown 120s: round robin sends
    # one of the first two requests to the dead target (502, no retry), which ejects it;
    # from then on every request goes to the live one.
    statuses = [get(gw.url(f"/eject/{i}")).status for i in range(12)]
    assert sorted(statuses[:2]) == [200, 502], statuses
    assert statuses[2:] == [200] * 10, statuses
