"""Python plugins loaded from a module path (tests/support/plugins_demo.py), through the
real gateway: each phase, a raising and a hanging plugin, bad plugin configs, reloads."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.client import assert_json_error, fetch, get
from support.configs import route, simple_config, upstream
from support.gateway import Gateway, run_cli
from support.net import wait_until

from pygate.plugins.python import Headers, Request, Response, StreamedBodyError

TESTS_DIR = Path(__file__).parent
DEMO = "support.plugins_demo"


@pytest.fixture(scope="module", autouse=True)
def plugin_path() -> Iterator[None]:
    """The gateway subprocess imports support.plugins_demo from tests/."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYTHONPATH", os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")]))
        yield


def plugin_config(upstreams, log_file: Path) -> dict:
    cfg = simple_config(upstreams, consumers=[{"name": "alice", "keys": ["alice-key"]}])
    cfg["plugin_timeout"] = "1s"
    cfg["upstreams"].append(upstream("canary", [upstreams.addr("rr2")]))
    cfg["routes"] += [
        route(
            "rewrite",
            ["/rewrite/*"],
            "echo",
            plugins={
                f"{DEMO}:Rewrite": {"value": "one", "arg": "added", "json_field": "added"},
                f"{DEMO}:Order": None,
            },
        ),
        route(
            "prefixed",
            ["/prefixed/*"],
            "echo",
            plugins={f"{DEMO}:Rewrite": {"value": "p", "path_prefix": "/inner"}},
        ),
        route(
            "guarded",
            ["/guarded/*"],
            "echo",
            plugins={"key-auth": {}, f"{DEMO}:require_token": {}},
        ),
        route(
            "canary",
            ["/canary/*"],
            "echo",
            plugins={f"{DEMO}:SwitchUpstream": {"upstream": "canary"}},
        ),
        route(
            "shaped",
            ["/shaped/*"],
            "echo",
            plugins={
                f"{DEMO}:Shape": {"status": 201},
                f"{DEMO}:RecordToFile": {"path": str(log_file)},
            },
        ),
        route("raises", ["/raises/*"], "echo", plugins={f"{DEMO}:Raiser": None}),
        route("raises-late", ["/raises-late/*"], "echo", plugins={f"{DEMO}:RaiseInResponse": None}),
        route("hangs", ["/hangs/*"], "echo", plugins={f"{DEMO}:Hang": None}),
        route("slow", ["/slowplugin/*"], "echo", plugins={f"{DEMO}:slow_then_fine": None}),
    ]
    return cfg


@pytest.fixture(scope="module")
def log_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("plugin-log") / "records.jsonl"


@pytest.fixture(scope="module")
def pgw(upstreams, log_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path_factory.mktemp("gw-plugins"), plugin_config(upstreams, log_file))
    try:
        gateway.start()
        yield gateway
        assert gateway.stop() == 0
    except BaseException:
        print(gateway.log_text()[-4000:])
        raise
    finally:
        gateway.kill()


# ----- access ---------------------------------------------------------------------------


def test_access_changes_header_query_and_json_body(pgw: Gateway) -> None:
    resp = fetch("POST", pgw.url("/rewrite/x?keep=1"), json={"name": "widget"})
    assert resp.status == 200, resp.body
    echo = resp.json()
    seen = resp.upstream_headers()
    assert seen["x-demo"] == "one"
    # The second plugin saw what the first put into ctx: config order, one shared ctx.
    assert seen["x-order"] == "one"
    assert echo["query"] == "keep=1&added=one"
    assert json.loads(echo["body"]) == {"name": "widget", "added": "one"}
    assert int(seen["content-length"]) == len(echo["body"].encode())


def test_access_changes_path(pgw: Gateway) -> None:
    echo = get(pgw.url("/prefixed/a/b?q=1")).json()
    assert (echo["path"], echo["query"]) == ("/inner/prefixed/a/b", "q=1")


def test_function_plugin_answers_directly_after_core_auth(pgw: Gateway) -> None:
    refused = get(pgw.url("/guarded/x"), headers={"apikey": "alice-key"})
    assert refused.status == 403
    assert refused.header("x-refused-by") == "require_token"
    assert refused.json() == {"refused": "/guarded/x", "consumer": "alice"}
    assert refused.header("x-request-id")
    assert "target" not in refused.json()  # never reached the upstream
    passed = get(pgw.url("/guarded/x"), headers={"apikey": "alice-key", "X-Demo-Token": "letmein"})
    assert passed.status == 200 and passed.json()["target"] == "echo"
    # The core's key-auth runs before Python plugins: no key, no plugin call.
    no_key = get(pgw.url("/guarded/x"), headers={"X-Demo-Token": "letmein"})
    assert_json_error(no_key, 401, "unauthorized")


def test_access_switches_upstream(pgw: Gateway) -> None:
    assert get(pgw.url("/canary/x")).json()["target"] == "echo"
    assert get(pgw.url("/canary/x"), headers={"X-Canary": "1"}).json()["target"] == "rr2"


def test_plugin_that_suspends_runs_to_completion(pgw: Gateway) -> None:
    resp = get(pgw.url("/slowplugin/x"))
    assert resp.status == 200
    assert resp.upstream_headers()["x-slow"] == "done"


# ----- response and log -------------------------------------------------------------------


def test_response_changes_status_headers_and_body(pgw: Gateway) -> None:
    resp = get(pgw.url("/shaped/x?a=1"))
    assert resp.status == 201
    assert resp.header("x-shaped") == "GET /shaped/x"
    doc = resp.json()
    assert doc["shaped_by"] == "Shape" and doc["target"] == "echo" and "headers" not in doc
    assert int(resp.header("content-length")) == len(resp.body)


def test_response_only_route_forwards_the_request_body(pgw: Gateway) -> None:
    # No access plugin on /shaped: the upload streams to the upstream as the client sent it.
    resp = fetch("POST", pgw.url("/shaped/upload"), data=b"x" * 5000)
    assert resp.status == 201
    assert resp.json()["body_size"] == 5000


def test_response_of_a_streamed_body_has_no_body(pgw: Gateway) -> None:
    gate = "py-plugin-sse"
    url = pgw.url(f"/shaped/sse?mode=sse&gate={gate}&n=1")
    resp = get(url)
    assert resp.status == 201
    assert resp.header("x-body") == "streamed"
    assert b"first from echo" in resp.body


def test_log_sees_the_finished_record(pgw: Gateway, log_file: Path) -> None:
    resp = get(pgw.url("/shaped/logged"))
    rid = resp.header("x-request-id")

    def logged() -> dict | None:
        if not log_file.exists():
            return None
        for line in log_file.read_text().splitlines():
            record = json.loads(line)
            if record["request_id"] == rid:
                return record
        return None

    record = wait_until(logged, 30, what="the log plugin's line")
    assert record["route"] == "shaped"
    assert record["path"] == "/shaped/logged"
    # The finished record: the status the client got (changed by the response plugin).
    assert record["status"] == 201
    assert record["method"] == "GET"
    assert record["upstream_addr"]


# ----- failures -------------------------------------------------------------------------


def test_raising_plugin_gives_500_and_the_gateway_keeps_serving(pgw: Gateway) -> None:
    err = assert_json_error(get(pgw.url("/raises/x")), 500, "plugin_error")
    assert f"{DEMO}:Raiser" in err["message"]
    assert "boom" not in err["message"]  # no traceback or exception text for the client
    line = f"pygate: plugin {DEMO}:Raiser failed on route raises (request {err['request_id']})"
    wait_until(lambda: line in pgw.log_text(), 10, what="the plugin failure in the log")
    log = pgw.log_text()
    after = log[log.index(line) :]
    assert "Traceback (most recent call last)" in after
    assert "RuntimeError: boom from the demo plugin" in after
    started = time.monotonic()
    for _ in range(20):
        assert_json_error(get(pgw.url("/raises/x")), 500, "plugin_error")
    elapsed = time.monotonic() - started
    assert get(pgw.url("/echo/still-up")).status == 200
    # A plugin failing on every request does not flood the log: at most one traceback a
    # second after the first.
    time.sleep(0.5)
    logged = pgw.log_count(f"plugin {DEMO}:Raiser failed on route raises")
    assert 1 <= logged <= 2 + elapsed, (logged, elapsed)
    record = pgw.records([err["request_id"]])[err["request_id"]]
    assert (record["status"], record["error_kind"]) == (500, "plugin_error")


def test_raising_response_plugin_gives_500(pgw: Gateway) -> None:
    err = assert_json_error(get(pgw.url("/raises-late/x")), 500, "plugin_error")
    assert f"{DEMO}:RaiseInResponse" in err["message"]
    line = (
        f"plugin {DEMO}:RaiseInResponse failed on route raises-late (request {err['request_id']})"
    )
    wait_until(lambda: line in pgw.log_text(), 10, what="the plugin failure in the log")


def test_hanging_plugin_gives_504_after_plugin_timeout(pgw: Gateway) -> None:
    started = time.monotonic()
    err = assert_json_error(get(pgw.url("/hangs/x")), 504, "plugin_timeout")
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 1.9, elapsed  # plugin_timeout is 1s; the core's backstop is +1s
    assert f"{DEMO}:Hang" in err["message"]
    line = f"plugin {DEMO}:Hang timed out after 1s on route hangs (request {err['request_id']}"
    wait_until(lambda: line in pgw.log_text(), 10, what="the timeout in the gateway log")
    # Other requests were served meanwhile and after.
    assert get(pgw.url("/rewrite/x")).status == 200


def test_route_without_python_plugins_is_untouched(pgw: Gateway, log_file: Path) -> None:
    resp = get(pgw.url("/echo/plain"))
    assert resp.status == 200
    assert "x-demo" not in resp.upstream_headers()
    assert resp.header("x-shaped") is None
    rid = resp.header("x-request-id")
    pgw.records([rid])
    assert rid not in (log_file.read_text() if log_file.exists() else "")


# ----- config ---------------------------------------------------------------------------


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


BASE = """\
listen: 127.0.0.1:0
upstreams:
  - name: echo
    targets: [127.0.0.1:9]
routes:
  - name: ok
    paths: [/ok/*]
    upstream: echo
  - name: plugged
    paths: [/p/*]
    upstream: echo
    plugins:
"""


def test_bad_plugin_config_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        BASE + f"      {DEMO}:Rewrite:\n" + "        value: 5\n" + "        bogus: true\n",
    )
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert (
        f"config error: {path}:14: routes[1].plugins.{DEMO}:Rewrite.value: expected a string, got 5"
        in lines
    ), lines
    assert any(
        line.startswith(
            f"config error: {path}:15: routes[1].plugins.{DEMO}:Rewrite.bogus: unknown field"
        )
        for line in lines
    ), lines
    res = run_cli("serve", "--config", str(path), timeout=60)
    assert res.returncode == 2
    assert "expected a string, got 5" in res.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "support.no_such_module:Thing",
            'cannot import module "support.no_such_module": '
            'no module named "support.no_such_module"',
        ),
        (f"{DEMO}:Missing", f'module "{DEMO}" has no attribute "Missing"'),
        (
            f"{DEMO}:NotAPlugin",
            "expected a pygate.plugins.python.Plugin subclass or an async function, "
            "got class NotAPlugin",
        ),
        ("no-such-plugin", "unknown plugin; available plugins: "),
    ],
)
def test_unloadable_plugin_is_a_config_error(tmp_path: Path, name: str, message: str) -> None:
    path = write(tmp_path, BASE + f"      {name}:\n")
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2, res.stderr
    assert f"config error: {path}:13: routes[1].plugins.{name}: " in res.stderr, res.stderr
    assert message in res.stderr, res.stderr


def test_function_plugin_takes_no_config(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + f"      {DEMO}:require_token:\n        x: 1\n")
    res = run_cli("check", "--config", str(path))
    assert res.returncode == 2
    assert f"{path}:14: routes[1].plugins.{DEMO}:require_token.x: unknown field" in res.stderr


# ----- reloads --------------------------------------------------------------------------


def test_reload_changes_plugins_and_refuses_bad_plugin_config(make_gateway, upstreams) -> None:
    cfg = simple_config(upstreams)
    cfg["routes"].append(route("p", ["/p/*"], "echo", plugins={f"{DEMO}:Rewrite": {"value": "v1"}}))
    gw = make_gateway(cfg)
    assert get(gw.url("/p/x")).upstream_headers()["x-demo"] == "v1"

    cfg["routes"][1]["plugins"] = {f"{DEMO}:Rewrite": {"value": "v2"}, f"{DEMO}:Shape": {}}
    gw.write_config(cfg)
    assert gw.reload() == "reloaded"
    resp = get(gw.url("/p/x"))
    assert resp.json()["shaped_by"] == "Shape"  # a new phase on the route
    assert resp.header("x-shaped") == "GET /p/x"

    bad = json.loads(json.dumps(cfg))
    bad["routes"][1]["plugins"] = {f"{DEMO}:Rewrite": {"value": ["not", "a", "string"]}}
    gw.write_config(bad)
    assert gw.reload() == "refused"
    assert "routes[1].plugins.support.plugins_demo:Rewrite.value" in gw.log_text()
    assert get(gw.url("/p/x")).json()["shaped_by"] == "Shape"  # the old config serves on

    # A plugin whose constructor raises: refused too, naming the plugin's config.
    bad["routes"][1]["plugins"] = {f"{DEMO}:FailsToStart": {"fail": True}}
    gw.write_config(bad)
    assert gw.reload() == "refused"
    assert (
        f"routes[1].plugins.{DEMO}:FailsToStart: the plugin failed to start: "
        "ConnectionError: cannot reach the demo backend" in gw.log_text()
    )
    assert get(gw.url("/p/x")).json()["shaped_by"] == "Shape"

    # Plugins removed: the route no longer calls Python at all.
    cfg["routes"][1]["plugins"] = {}
    gw.write_config(cfg)
    assert gw.reload() == "reloaded"
    resp = get(gw.url("/p/x"))
    assert "x-demo" not in resp.upstream_headers() and resp.header("x-shaped") is None
    gw.signal(signal.SIGTERM)
    assert gw.proc.wait(60) == 0


def test_plugin_that_cannot_start_stops_serve_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, BASE + f"      {DEMO}:FailsToStart:\n        fail: true\n")
    res = run_cli("serve", "--config", str(path), timeout=60)
    assert res.returncode == 2, res.stderr
    assert (
        f"config error: {path}:13: routes[1].plugins.{DEMO}:FailsToStart: "
        "the plugin failed to start: ConnectionError: cannot reach the demo backend"
    ) in res.stderr


def test_shutdown_waits_for_a_request_inside_a_plugin(make_gateway, upstreams) -> None:
    cfg = simple_config(upstreams, shutdown_grace="10s")
    cfg["routes"].append(
        route("sleepy", ["/sleepy/*"], "echo", plugins={f"{DEMO}:Sleep": {"seconds": 1.5}})
    )
    gw = make_gateway(cfg)
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(get, gw.url("/sleepy/x"))
        time.sleep(0.5)  # the request is inside the plugin now
        gw.signal(signal.SIGTERM)
        resp = pending.result(30)
    assert resp.status == 200, resp.body
    assert resp.upstream_headers()["x-slept"] == "1.5"
    assert gw.proc.wait(60) == 0


# ----- the author API on its own (a stand-in for the core's PluginCall) --------------------


class FakeCall:
    """The attributes of pygate._core.PluginCall that Request and Response read."""

    def __init__(self, uri: str = "/a/b?x=1&x=2&y=", headers=None, body: bytes = b"") -> None:
        self.phase, self.route, self.request_id = "access", "r", "id-1"
        self.method, self.uri, self.client_ip, self.consumer = "POST", uri, "127.0.0.1", None
        self.headers = headers if headers is not None else [("host", "h"), ("accept", "a")]
        self.body = body
        self.status = 200
        self.response_headers = [("content-type", "text/plain"), ("set-cookie", "a=1")]
        self.response_body: bytes | None = b"hello"


def test_headers_are_case_insensitive_and_multi_valued() -> None:
    h = Headers([("Set-Cookie", "a=1"), ("X-One", "1"), ("set-cookie", "b=2")])
    assert h["SET-COOKIE"] == "a=1" and h.get_all("set-cookie") == ["a=1", "b=2"]
    assert "x-one" in h and "x-two" not in h and h.get("x-two", "d") == "d"
    assert not h.changed
    h["set-cookie"] = "c=3"  # replaces every value, in the first one's place
    assert h.items() == [("set-cookie", "c=3"), ("X-One", "1")]
    h.add("Set-Cookie", "d=4")
    assert h.get_all("Set-Cookie") == ["c=3", "d=4"] and len(h) == 3
    assert h.remove("X-ONE") and not h.remove("x-one")
    with pytest.raises(KeyError):
        del h["x-one"]
    assert list(h) == ["set-cookie"] and h.changed


def test_request_sends_back_only_what_changed() -> None:
    untouched = Request(FakeCall())
    assert (untouched.path, untouched.query, untouched.method) == ("/a/b", "x=1&x=2&y=", "POST")
    assert untouched.args == {"x": ["1", "2"], "y": [""]}
    assert untouched.headers.get("HOST") == "h"
    assert untouched._changes() == (None, None, None)

    request = Request(FakeCall(body=b'{"a": 1}'))
    request.args["y"] = ["z w"]  # changed in place: still sent
    request.remove_arg("x")
    assert request._changes()[0] == "/a/b?y=z+w"
    request.path = "/c"
    request.set_json({**request.json(), "b": 2})
    uri, headers, body = request._changes()
    assert uri == "/c?y=z+w"
    assert ("Content-Type", "application/json") in headers and ("host", "h") in headers
    assert json.loads(body) == {"a": 1, "b": 2}
    with pytest.raises(ValueError):
        request.path = "no-slash"


def test_response_changes_and_streamed_bodies() -> None:
    call = FakeCall()
    response = Response._from_call(call)
    assert response._changes() == (None, None, None)
    response.status = 418
    response.headers.add("Set-Cookie", "b=2")
    response.body = "short and stout"
    status, headers, body = response._changes()
    assert (status, body) == (418, b"short and stout")
    assert headers[-2:] == [("set-cookie", "a=1"), ("Set-Cookie", "b=2")]

    call.response_body = None
    streamed = Response._from_call(call)
    assert streamed.body is None
    with pytest.raises(StreamedBodyError):
        streamed.body = b"x"

    direct = Response(404, {"X-A": "1"}, json={"missing": True})
    status, headers, body = direct._answer()
    assert (status, json.loads(body)) == (404, {"missing": True})
    assert headers == [("X-A", "1"), ("Content-Type", "application/json")]
