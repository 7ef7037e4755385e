"""Active health checks as an attack surface: the health endpoint of the admin listener,
what a probe's answer may leak, and where probes may go.

Probes open no listener. Their answers come from upstreams the operator does not
necessarily trust with the admin API's readers, so nothing of an answer's body may reach
an API answer, a metric or a log line; and nothing a client sends may point a probe at
another address or give it another Host.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request

import pytest
from support.admin_api import AdminApi
from support.client import get, raw_exchange
from support.gateway import Gateway, running
from support.health_site import Site
from support.net import wait_until

CHECK = {"type": "http", "path": "/health", "interval": "100ms", "timeout": "2s",
         "successes": 1, "failures": 1}  # fmt: skip
WAIT = 60


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    marker = f"probe-body-{secrets.token_hex(8)}"
    target, decoy = Site("target", failing_body=marker), Site("decoy")
    cfg = {
        "upstreams": [{"name": "pool", "targets": [target.addr],
                       "health_check": {"active": CHECK}}],
        "routes": [{"name": "pool", "paths": ["/pool/*"], "upstream": "pool"}],
    }  # fmt: skip
    with running(Gateway(tmp_path_factory.mktemp("gw-health-sec"), cfg)) as gw:
        yield gw, target, decoy, marker
    for site in (target, decoy):
        site.close()


def admin_request(gw: Gateway, path: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(gw.admin_url(path), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.mark.parametrize("headers,status,kind", [
    ({}, 401, None),
    ({"Authorization": "Bearer wrong"}, 401, None),
    ({"Host": "evil.example"}, 403, "forbidden_host"),
    ({"Origin": "http://evil.example"}, 403, "forbidden_origin"),
])  # fmt: skip
def test_the_health_endpoint_is_guarded_like_the_admin_api(probed, headers, status, kind):
    gw, target, _, _ = probed
    if status == 403:
        headers = {**headers, "Authorization": f"Bearer {gw.admin_token}"}
    code, body = admin_request(gw, "/upstreams/pool/health", headers)
    assert code == status, body
    assert target.addr not in body
    if kind:
        assert kind in body


def test_a_probe_answer_body_is_never_shown_or_logged(probed):
    gw, target, _, marker = probed
    target.failing = True
    try:
        api = AdminApi(gw)
        wait_until(lambda: not api.ok("GET", "/upstreams/pool/health")["targets"][0]["healthy"],
                   WAIT, what="the target down")  # fmt: skip
        # The probes did get the marker in their answers.
        assert marker.encode() in get(f"http://{target.addr}/health").body
        shown = [
            str(api.ok("GET", "/upstreams/pool/health")),
            str(api.ok("GET", "/status")),
            api.ok("GET", "/metrics"),
            gw.cli("status").stdout,
            gw.cli("status", "--json").stdout,
        ]
        for text in shown:
            assert marker not in text
        assert marker not in gw.log_text()
    finally:
        target.failing = False
    wait_until(lambda: AdminApi(gw).ok("GET", "/upstreams/pool/health")["healthy"] == 1,
               WAIT, what="the target back")  # fmt: skip


def test_clients_cannot_point_probes_elsewhere(probed):
    gw, target, decoy, _ = probed
    # A client names the decoy every way it could: as Host, in an absolute-form target,
    # in X-Forwarded-Host, on a path that looks like the probe's.
    for host in (decoy.addr, f"decoy.example:{decoy.port}"):
        get(gw.url("/pool/health"), headers={"Host": host, "X-Forwarded-Host": decoy.addr})
    request = (f"GET http://{decoy.addr}/health HTTP/1.1\r\nHost: {decoy.addr}\r\n"
               "Connection: close\r\n\r\n").encode()  # fmt: skip
    raw_exchange(gw.port, request)
    seen = len(target.probes())
    wait_until(lambda: len(target.probes()) >= seen + 3, WAIT, what="three more probes")
    assert decoy.seen == [], "a probe (or a request) reached an address not in the config"
    assert {host for _, host, _ in target.probes()} == {target.addr}
