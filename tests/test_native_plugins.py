"""ip-restriction and cors: plugins that run in the Rust core, through the real gateway."""

from __future__ import annotations

from support.client import assert_json_error, fetch, get
from support.configs import route, simple_config
from support.gateway import run_cli

APP = "https://app.example.com"


def gateway_config(upstreams) -> dict:
    cfg = simple_config(upstreams, consumers=[{"name": "alice", "keys": ["alice-key"]}])
    cfg["routes"] += [
        route(
            "deny-me", ["/ipdeny/*"], "echo", plugins={"ip-restriction": {"deny": ["127.0.0.1"]}}
        ),
        route(
            "allow-lo",
            ["/ipallow/*"],
            "echo",
            plugins={"ip-restriction": {"allow": ["127.0.0.0/8", "::1"]}},
        ),
        route(
            "allow-other",
            ["/ipother/*"],
            "echo",
            plugins={"ip-restriction": {"allow": ["10.0.0.0/8"]}},
        ),
        route(
            "browser",
            ["/cors/*"],
            "echo",
            plugins={
                "cors": {
                    "allow_origins": [APP],
                    "expose_headers": ["X-Request-Id"],
                    "max_age": "10m",
                },
                "key-auth": {},
            },
        ),
    ]
    return cfg


def test_ip_restriction_allows_and_denies(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    denied = get(gw.url("/ipdeny/x"))
    error = assert_json_error(denied, 403, "ip_forbidden")
    assert get(gw.url("/ipallow/x")).status == 200
    assert_json_error(get(gw.url("/ipother/x")), 403, "ip_forbidden")
    record = gw.records([error["request_id"]])[error["request_id"]]
    assert (record["status"], record["error_kind"], record["upstream_addr"]) == (
        403,
        "ip_forbidden",
        "",
    )


def test_cors_preflight_is_answered_by_the_gateway(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    pre = fetch(
        "OPTIONS",
        gw.url("/cors/items"),
        headers={
            "Origin": APP,
            "Access-Control-Request-Method": "PUT",
            "Access-Control-Request-Headers": "content-type, apikey",
        },
    )
    assert pre.status == 204 and pre.body == b""  # the echo upstream would answer 200 JSON
    assert pre.header("access-control-allow-origin") == APP
    assert "PUT" in pre.header("access-control-allow-methods")
    assert pre.header("access-control-allow-headers") == "content-type, apikey"
    assert pre.header("access-control-max-age") == "600"
    assert pre.header("vary") == "Origin"
    record = gw.records([pre.header("x-request-id")])[pre.header("x-request-id")]
    assert (record["status"], record["upstream_addr"]) == (204, "")


def test_cors_headers_on_answers_and_refusals(make_gateway, upstreams) -> None:
    gw = make_gateway(gateway_config(upstreams))
    ok = get(gw.url("/cors/items"), headers={"Origin": APP, "apikey": "alice-key"})
    assert ok.status == 200
    assert ok.header("access-control-allow-origin") == APP
    assert ok.header("access-control-expose-headers") == "X-Request-Id"
    # A refusal must carry them too, or the page cannot read why it was refused.
    refused = get(gw.url("/cors/items"), headers={"Origin": APP})
    assert_json_error(refused, 401, "unauthorized")
    assert refused.header("access-control-allow-origin") == APP
    stranger = get(
        gw.url("/cors/items"), headers={"Origin": "https://evil.example", "apikey": "alice-key"}
    )
    assert stranger.status == 200
    assert stranger.header("access-control-allow-origin") is None
    plain = get(gw.url("/echo/no-cors"), headers={"Origin": APP})
    assert plain.header("access-control-allow-origin") is None


def test_bad_plugin_configs_name_the_field(tmp_path) -> None:
    cases = {
        "plugins.ip-restriction.allow[1]": '{"ip-restriction": {"allow": ["10.0.0.0/8", "ten"]}}',
        "plugins.cors": '{"cors": {"allow_origins": ["https://a.example"]}}',
        "plugins.cors.allow_origins[0]": '{"cors": {"allow_origins": ["https://a.example/x/"]}}',
    }
    for field, plugins in cases.items():
        methods = "[GET]" if field == "plugins.cors" else "[]"
        path = tmp_path / "gw.yaml"
        path.write_text(
            "listen: 127.0.0.1:1\n"
            "upstreams: [{name: u, targets: ['127.0.0.1:9']}]\n"
            f"routes: [{{name: r, paths: ['/x'], upstream: u, methods: {methods}, "
            f"plugins: {plugins}}}]\n"
        )
        done = run_cli("check", "--config", str(path))
        assert done.returncode == 2, (field, done.stdout, done.stderr)
        assert f"routes[0].{field}" in done.stderr, (field, done.stderr)
        assert "gw.yaml" in done.stderr
