"""Path traversal past route auth: the gateway routes on, and forwards, the normalised path.

`/public/*` is open, `/private/*` needs a key. An upstream that resolves dot-segments or
decodes escapes itself (nginx, most frameworks) would serve `/private/x` for
`/public/../private/x`, so every spelling of that must either reach the private route
(401 without a key) or be refused (400), and the upstream must see the normalised path.
Requests go out over raw sockets so that no client normalises them first.
"""

from __future__ import annotations

import pytest
import yaml
from support.configs import route, upstream
from support.gateway import Gateway, run_cli, running
from support.raw_http import echoed, error_kind, raw_request

KEY = ("apikey", "alice-key")


def paths_config(upstreams, **http) -> dict:
    config = {
        "workers": 1,
        "upstreams": [
            upstream("public", [upstreams.addr("echo")]),
            upstream("private", [upstreams.addr("param")]),
        ],
        "consumers": [{"name": "alice", "keys": ["alice-key"]}],
        "routes": [
            route("public", ["/public/*"], "public"),
            route("private", ["/private/*"], "private", plugins={"key-auth": {}}),
        ],
    }
    if http:
        config["http"] = http
    return config


@pytest.fixture(scope="module")
def pgw(upstreams, tmp_path_factory):
    config = paths_config(upstreams)
    with running(Gateway(tmp_path_factory.mktemp("gw-paths"), config)) as gateway:
        yield gateway


# Spellings of "/private/x" reached through the open prefix (or above it).
TO_PRIVATE = [
    "/public/../private/x",
    "/public/%2e%2e/private/x",
    "/public/%2E%2e/private/x",
    "/public/.%2E/private/x",
    "/public/%2e./private/x",
    "/public/./../private/x",
    "/public/%2e/../private/x",
    "/public/a/b/../../../private/x",
    "//private/x",
    "/public//../private/x",
    "///private//x",
    "/%70rivate/x",
    "/priv%61te/x",
    "/public/../private/./x",
]


@pytest.mark.parametrize("target", TO_PRIVATE)
def test_traversal_into_the_private_route_needs_its_key(pgw, target):
    resp = raw_request(pgw.port, target)
    assert resp.status == 401, (target, resp.status, resp.body[:300])
    assert error_kind(resp) == "unauthorized"
    # With the key the private upstream serves it, and sees the normalised path.
    doc = echoed(raw_request(pgw.port, target, [KEY]))
    assert doc["target"] == "param", (target, doc["target"])
    # Slashes are merged (the default) before dot-segments are resolved.
    assert doc["raw_path"] == "/private/x", (target, doc["raw_path"])


PATH_PARAMETERS = [
    ("/private;x/y", "/private;x/y"),
    ("/private;jsessionid=abc/y", "/private;jsessionid=abc/y"),
    ("/private;/y", "/private;/y"),
    ("/public;x/../private/y", "/private/y"),
]


def test_path_parameters_do_not_move_a_request_to_another_route(upstreams, make_gateway):
    # Tomcat, Jetty and Spring serve "/private;x/y" as "/private/y": with an open
    # catch-all route beside /private/*, it must still be routed to /private/* (and is
    # forwarded with its parameters).
    config = paths_config(upstreams)
    config["routes"].append(route("catch-all", ["/*"], "public"))
    gateway = make_gateway(config)
    for target, forwarded in PATH_PARAMETERS:
        resp = raw_request(gateway.port, target)
        assert resp.status == 401, (target, resp.status, resp.body[:300])
        doc = echoed(raw_request(gateway.port, target, [KEY]))
        assert (doc["target"], doc["raw_path"]) == ("param", forwarded), target
    assert echoed(raw_request(gateway.port, "/other;x/y"))["target"] == "echo"


# Refused with 400 by default: escaped slashes and backslashes, Tomcat path parameters
# on dot-segments, climbing above the root, escaped control bytes, broken escapes.
REFUSED = [
    "/public/..%2fprivate/x",
    "/public/..%2Fprivate/x",
    "/public/%2e%2e%2fprivate/x",
    "/public/..%5cprivate/x",
    "/public/..%5Cprivate/x",
    "/public/..\\private/x",
    "/public\\..\\private/x",
    "/public/..;/private/x",
    "/public/..;jsessionid=1/private/x",
    "/public/%2e%2e;/private/x",
    "/public/.;/x",
    "/../private",
    "/public/../../private/x",
    "/%2e%2e/private/x",
    "/..",
    "/public/%00",
    "/public/a%0d%0aX-Injected:%20yes",
    "/public/%7f",
    "/public/%zz",
    "/public/%2",
    "/public/%c0%ae%c0%ae/private/x",
]


@pytest.mark.parametrize("target", REFUSED)
def test_ambiguous_or_escaping_paths_are_400(pgw, target):
    for headers in ([], [KEY]):
        resp = raw_request(pgw.port, target, headers)
        assert resp.status == 400, (target, resp.status, resp.body[:300])
        assert error_kind(resp) == "bad_request"


@pytest.mark.parametrize(
    ("target", "forwarded"),
    [
        # Only unreserved escapes are decoded, and only once: %25 stays, so %252e is
        # never turned into a dot (no double decoding).
        ("/public/%252e%252e/private/x", "/public/%252e%252e/private/x"),
        ("/public/%252F", "/public/%252F"),
        ("/pub%6cic/x", "/public/x"),
        ("/public/%7euser/%41%2D%5f", "/public/~user/A-_"),
        # Reserved and non-ASCII escapes stay escaped (hex upper-cased, RFC 3986 6.2.2.1).
        ("/public/a%3fb%2bc", "/public/a%3Fb%2Bc"),
        ("/public/%e2%82%ac", "/public/%E2%82%AC"),
        ("/public/a/./b/../c", "/public/a/c"),
        ("/public/a/..", "/public/"),
        ("/public/.", "/public/"),
        ("/public/...", "/public/..."),
        ("/public/..a/.b", "/public/..a/.b"),
        ("/public/x;v=1", "/public/x;v=1"),
        ("/public/x", "/public/x"),
    ],
)
def test_forwarded_path_is_the_normalised_one(pgw, target, forwarded):
    doc = echoed(raw_request(pgw.port, target))
    assert doc["target"] == "echo", (target, doc["target"])
    assert doc["raw_path"] == forwarded, (target, doc["raw_path"])


def test_query_string_is_forwarded_untouched(pgw):
    query = "q=../%2e%2e/%2F&r=%252e&s=a//b"
    doc = echoed(raw_request(pgw.port, f"/public/a/../x?{query}"))
    assert doc["raw_path"] == f"/public/x?{query}"


def test_absolute_form_target_is_normalised_too(pgw):
    target = f"http://127.0.0.1:{pgw.port}/public/%2e%2e/private/x"
    assert raw_request(pgw.port, target).status == 401
    assert echoed(raw_request(pgw.port, target, [KEY]))["raw_path"] == "/private/x"


def test_call_record_logs_the_normalised_path(pgw):
    resp = raw_request(pgw.port, "/public/a/%2e%2e/b//c")
    assert echoed(resp)["raw_path"] == "/public/b/c"
    rid = resp.header("x-request-id")
    record = pgw.records([rid])[rid]
    assert record["path"] == "/public/b/c", record
    assert record["route"] == "public"


def test_escaped_slashes_keep_and_decode_are_configurable(upstreams, make_gateway):
    keep = make_gateway(paths_config(upstreams, escaped_slashes="keep"), name="keep")
    doc = echoed(raw_request(keep.port, "/public/..%2fprivate/x"))
    # Kept as data, not a separator: it stays inside the public route, escaped.
    assert (doc["target"], doc["raw_path"]) == ("echo", "/public/..%2Fprivate/x")
    assert raw_request(keep.port, "/public/..\\private/x").status == 200

    decode = make_gateway(paths_config(upstreams, escaped_slashes="decode"), name="decode")
    for target in ["/public/..%2fprivate/x", "/public/..%5Cprivate/x", "/public/..\\private/x"]:
        assert raw_request(decode.port, target).status == 401, target
        doc = echoed(raw_request(decode.port, target, [KEY]))
        assert (doc["target"], doc["raw_path"]) == ("param", "/private/x"), target
    # Decoding still refuses what climbs above the root.
    assert raw_request(decode.port, "/public%2f..%2f..%2fprivate").status == 400


def test_merge_slashes_can_be_turned_off(upstreams, make_gateway):
    gateway = make_gateway(paths_config(upstreams, merge_slashes=False))
    doc = echoed(raw_request(gateway.port, "/public//a"))
    assert doc["raw_path"] == "/public//a"
    # Not merged, "//private/x" is no route's path: 404, never the private upstream.
    resp = raw_request(gateway.port, "//private/x", [KEY])
    assert resp.status == 404 and error_kind(resp) == "no_route"
    assert raw_request(gateway.port, "/public/../private/x").status == 401


def test_bad_http_settings_are_config_errors(upstreams, tmp_path):
    config = paths_config(upstreams, escaped_slashes="sometimes")
    config["listen"] = "127.0.0.1:0"
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, res
    assert "http.escaped_slashes" in res.stderr + res.stdout
    assert "reject, keep, decode" in res.stderr + res.stdout
