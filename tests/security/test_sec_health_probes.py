"""Attacks on the unauthenticated probes /healthz and /readyz: they must not become a way
round the admin token, tell an anonymous caller anything about the gateway's config,
secrets or files, nor answer a page on another site (DNS rebinding)."""

from __future__ import annotations

from support.configs import simple_config
from support.raw_http import raw_request

ADMIN_TOKEN = "probe-sec-admin-token-0123456789"
UPSTREAM_SECRET = "probe-sec-upstream-secret-value"


def test_probes_reveal_nothing_and_open_nothing_else(make_gateway, upstreams, tmp_path):
    cfg = simple_config(upstreams, admin={"token": ADMIN_TOKEN})
    cfg["consumers"] = [{"name": "alice", "keys": [UPSTREAM_SECRET]}]
    gateway = make_gateway(cfg)
    port = gateway.admin_port
    secrets = [ADMIN_TOKEN, UPSTREAM_SECRET, str(gateway.workdir), str(tmp_path),
               gateway.config_path.name, "chdb", "clickhouse", "127.0.0.1"]  # fmt: skip
    for path in ("/healthz", "/readyz"):
        resp = raw_request(port, path)
        assert resp.status == 200, (path, resp.body)
        text = resp.body.decode() + "".join(f"{k}: {v}" for k, v in resp.headers.items())
        for secret in secrets:
            assert secret not in text, (path, secret, text)
        # Only fixed words: every value is a short identifier.
        body = resp.json()
        words = [body["status"], *body.get("checks", {}).values()]
        assert all(w.replace("_", "").isalpha() and len(w) < 20 for w in words), body

    # The exemption is for exactly these two GET paths, not for what looks like them.
    for target in ("/status", "/healthz/../status", "/readyz/../config", "/%68ealthz/../status",
                   "/HEALTHZ", "/healthz/", "/readyz;/status", "/status?/healthz"):  # fmt: skip
        resp = raw_request(port, target)
        assert resp.status in (401, 404), (target, resp.status, resp.body)
        assert ADMIN_TOKEN not in resp.body.decode()
    for method in ("POST", "PUT", "DELETE"):
        resp = raw_request(port, "/readyz", [("Content-Length", "0")], method=method)
        assert resp.status == 401, (method, resp.status)  # not public: the token check first

    # Still behind the Host/Origin guard: a rebound name or another site's page gets 403.
    assert raw_request(port, "/healthz", host="evil.example:80").status == 403
    assert raw_request(port, "/readyz", host=f"evil.example:{port}").status == 403
    cross = raw_request(port, "/readyz", [("Origin", "http://evil.example")])
    assert cross.status == 403
