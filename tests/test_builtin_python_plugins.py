"""The built-in Python plugins that edit, check, route or answer requests, through the real
gateway and a real upstream: request-/response-transformer, request-validation,
traffic-split and mock (proxy-cache and circuit-breaker: test_builtin_python_state.py).

One gateway serves every route of this file; config errors go through `pygate check`. The
echo upstream reports what it received, so each test sees both what the client got and
what reached the upstream.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from support.builtin_gateway import check_plugins, run_gateway
from support.client import TIMEOUT, afetch, assert_json_error, fetch, get
from support.configs import route
from support.gateway import Gateway

JSON = {"Content-Type": "application/json"}


def plugin_routes() -> list[dict]:
    return [
        route(
            "rt-req",
            ["/rt-req/*"],
            "echo",
            plugins={
                "request-transformer": {
                    "remove": {
                        "headers": ["X-Debug"],
                        "querystring": ["token"],
                        "body": ["password"],
                    },
                    "rename": {"headers": {"X-Old": "X-New"}, "body": {"user": "username"}},
                    "replace": {"querystring": {"version": "2"}, "body": {"role": "guest"}},
                    "add": {
                        "headers": {"X-Source": "gateway"},
                        "querystring": {"via": "pygate"},
                        "body": {"source": "gateway", "tags": ["a"]},
                    },
                    "append": {"headers": {"X-Tag": "edge"}},
                }
            },
        ),
        route(
            "rt-resp",
            ["/rt-resp/*"],
            "echo",
            plugins={
                "response-transformer": {
                    "remove": {"headers": ["X-Upstream-Target"], "json": ["headers"]},
                    "rename": {"json": {"target": "site"}},
                    "add": {"headers": {"X-Served-By": "pygate"}, "json": {"api_version": 2}},
                }
            },
        ),
        route(
            "validated",
            ["/validated/*"],
            "echo",
            plugins={
                "request-validation": {
                    "body_schema": {
                        "type": "object",
                        "required": ["name"],
                        "properties": {
                            "name": {"type": "string"},
                            "items": {"type": "array", "items": {"type": "integer"}},
                        },
                    },
                    "header_schema": {"type": "object", "required": ["x-tenant"]},
                    "query_schema": {
                        "type": "object",
                        "properties": {"page": {"type": "string", "pattern": "^[0-9]+$"}},
                    },
                }
            },
        ),
        route(
            "split-header",
            ["/split-header/*"],
            "stable",
            plugins={
                "traffic-split": {
                    "rules": [{"headers": {"X-Canary": ["1", "yes"]}, "upstream": "canary"}]
                }
            },
        ),
        route(
            "split-percent",
            ["/split-percent/*"],
            "stable",
            plugins={"traffic-split": {"percent": [{"upstream": "canary", "percent": 25}]}},
        ),
        route(
            "mocked",
            ["/mocked/*"],
            "dead",  # never called: a 502 would show that it was
            plugins={
                "mock": {
                    "status": 201,
                    "headers": {"X-Mocked": "yes"},
                    "json": {"id": 7, "name": "widget"},
                    "delay": "300ms",
                }
            },
        ),
    ]


@pytest.fixture(scope="module")
def gw(upstreams, dead_addr, tmp_path_factory) -> Iterator[Gateway]:
    workdir = tmp_path_factory.mktemp("gw-builtins")
    yield from run_gateway(workdir, upstreams, dead_addr, plugin_routes())


def sent_body(resp) -> dict:
    """The JSON body the echo upstream received."""
    return json.loads(resp.json()["body"])


# ----- request-transformer and response-transformer ------------------------------------


def test_request_transformer_edits_headers_query_and_json_body(gw) -> None:
    body = {"user": "ann", "password": "s3cret", "role": "admin", "keep": 1}
    resp = fetch(
        "POST",
        gw.url("/rt-req/x?token=abc&version=1&keep=yes"),
        headers={**JSON, "X-Debug": "1", "X-Old": "renamed", "X-Tag": "client"},
        data=json.dumps(body),
    )
    assert resp.status == 200, resp.body
    seen = resp.upstream_headers()
    assert "x-debug" not in seen and "x-old" not in seen
    assert seen["x-new"] == "renamed"
    assert seen["x-source"] == "gateway"
    assert seen["x-tag"] == "client, edge"
    args = dict(p.split("=") for p in resp.json()["query"].split("&"))
    assert args == {"version": "2", "keep": "yes", "via": "pygate"}
    assert sent_body(resp) == {
        "username": "ann",
        "role": "guest",
        "keep": 1,
        "source": "gateway",
        "tags": ["a"],
    }


def test_request_transformer_passes_other_bodies_untouched(gw) -> None:
    resp = fetch(
        "POST",
        gw.url("/rt-req/x"),
        headers={"Content-Type": "text/plain"},
        data=b'{"password": "not json by type"}',
    )
    assert resp.status == 200
    assert resp.json()["body"] == '{"password": "not json by type"}'
    assert resp.upstream_headers()["x-source"] == "gateway"  # headers still edited


def test_response_transformer_edits_headers_and_json(gw) -> None:
    resp = get(gw.url("/rt-resp/thing?a=1"))
    assert resp.status == 200
    assert resp.header("x-upstream-target") is None
    assert resp.header("x-served-by") == "pygate"
    doc = resp.json()
    assert doc["site"] == "echo" and "target" not in doc
    assert "headers" not in doc
    assert doc["api_version"] == 2
    assert doc["path"] == "/rt-resp/thing"
    assert int(resp.header("content-length")) == len(resp.body)


def test_response_transformer_changes_only_headers_of_a_streamed_response(gw, upstreams) -> None:
    gate = f"rt-sse-{time.monotonic_ns()}"
    # Open the gate first, so the event stream ends without waiting.
    urllib.request.urlopen(f"http://{upstreams.addr('echo')}/__release?gate={gate}").read()
    resp = get(gw.url(f"/rt-resp/events?mode=sse&n=2&gate={gate}"))
    assert resp.status == 200
    assert resp.header("content-type").startswith("text/event-stream")
    assert resp.header("x-served-by") == "pygate"
    assert resp.body == b"id: 1\ndata: first from echo\n\nid: 2\ndata: event 2 from echo\n\n"


# ----- request-validation --------------------------------------------------------------


def test_request_validation_lets_valid_requests_through(gw) -> None:
    body = {"name": "widget", "items": [1, 2]}
    resp = fetch(
        "POST", gw.url("/validated/x"), headers={**JSON, "X-Tenant": "t1"}, data=json.dumps(body)
    )
    assert resp.status == 200, resp.body
    assert sent_body(resp) == body


def test_request_validation_refuses_invalid_requests(gw) -> None:
    def post(body: bytes, tenant: bool = True, query: str = ""):
        headers = {**JSON, "X-Tenant": "t1"} if tenant else JSON
        return fetch("POST", gw.url(f"/validated/x{query}"), headers=headers, data=body)

    wrong_type = assert_json_error(
        post(b'{"name": "w", "items": [1, "two"]}'), 400, "request_invalid"
    )
    assert wrong_type["message"] == "$.items[1]: 'two' is not of type 'integer'"
    missing = assert_json_error(post(b'{"items": []}'), 400, "request_invalid")
    assert missing["message"] == "$: 'name' is a required property"
    no_header = assert_json_error(post(b'{"name": "w"}', tenant=False), 400, "request_invalid")
    assert no_header["message"] == "headers: 'x-tenant' is a required property"
    bad_page = assert_json_error(post(b'{"name": "w"}', query="?page=x"), 400, "request_invalid")
    assert bad_page["message"] == "query.page: 'x' does not match '^[0-9]+$'"
    assert post(b'{"name": "w"}', query="?page=12").status == 200
    not_json = assert_json_error(post(b"{name: w}"), 400, "request_invalid")
    assert not_json["message"].startswith("$: the body is not valid JSON")
    record = gw.records([wrong_type["request_id"]])[wrong_type["request_id"]]
    # Refused before the upstream, with the refusal's kind as the call's error_kind.
    assert (record["status"], record["upstream_addr"], record["route"], record["error_kind"]) == (
        400,
        "",
        "validated",
        "request_invalid",
    )


def test_request_validation_bad_schema_is_a_config_error(tmp_path) -> None:
    done = check_plugins(
        tmp_path,
        "{request-validation: {body_schema: {type: object, properties: {age: {type: integr}}}}}",
    )
    assert done.returncode == 2, (done.stdout, done.stderr)
    field = "routes[0].plugins.request-validation.body_schema.properties.age.type"
    assert field in done.stderr, done.stderr
    assert "invalid JSON schema" in done.stderr and "gw.yaml" in done.stderr


# ----- traffic-split -------------------------------------------------------------------


def test_traffic_split_by_header(gw) -> None:
    for value in ("1", "yes"):
        resp = get(gw.url("/split-header/x"), headers={"X-Canary": value})
        assert resp.json()["target"] == "rr2", value
    for headers in ({}, {"X-Canary": "0"}):
        assert get(gw.url("/split-header/x"), headers=headers).json()["target"] == "rr1"


def test_traffic_split_by_percentage(gw) -> None:
    async def run() -> list[str]:
        async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
            sem = asyncio.Semaphore(16)

            async def one(i: int) -> str:
                async with sem:
                    resp = await afetch(session, "GET", gw.url(f"/split-percent/{i}"))
                    assert resp.status == 200, resp.body
                    return resp.json()["target"]

            return await asyncio.gather(*(one(i) for i in range(400)))

    targets = asyncio.run(run())
    canary = targets.count("rr2")
    assert targets.count("rr1") + canary == 400
    assert 80 <= canary <= 120, canary  # 25% of 400, within 5 points


def test_traffic_split_unknown_upstream_is_a_config_error(tmp_path) -> None:
    done = check_plugins(tmp_path, "{traffic-split: {percent: [{upstream: nowhere, percent: 10}]}}")
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "routes[0].plugins.traffic-split.percent[0].upstream" in done.stderr, done.stderr
    assert 'unknown upstream "nowhere"' in done.stderr


# ----- mock ----------------------------------------------------------------------------


def test_mock_answers_without_the_upstream(gw) -> None:
    started = time.monotonic()
    resp = get(gw.url("/mocked/anything?x=1"))
    elapsed = time.monotonic() - started
    assert resp.status == 201
    assert resp.json() == {"id": 7, "name": "widget"}
    assert resp.header("content-type") == "application/json"
    assert resp.header("x-mocked") == "yes"
    assert elapsed >= 0.3
    rid = resp.header("x-request-id")
    record = gw.records([rid])[rid]
    assert (record["status"], record["upstream_addr"], record["route"]) == (201, "", "mocked")


def test_bad_builtin_configs_name_the_field(tmp_path) -> None:
    cases = {
        "plugins.mock.json": "{mock: {body: text, json: {a: 1}}}",
        "plugins.mock.delay": "{mock: {delay: 10s}}",  # not shorter than plugin_timeout (5s)
        "plugins.mock.status": "{mock: {status: 99}}",
        "plugins.request-transformer.add.headers.Bad Name": (
            "{request-transformer: {add: {headers: {'Bad Name': x}}}}"
        ),
        "plugins.response-transformer.remove.headers[0]": (
            "{response-transformer: {remove: {headers: [Content-Length]}}}"
        ),
        "plugins.proxy-cache.max_entry_bytes": "{proxy-cache: {max_entry_bytes: 20m}}",
        "plugins.circuit-breaker.failure_ratio": "{circuit-breaker: {failure_ratio: 2}}",
        "plugins.traffic-split.percent": (
            "{traffic-split: {percent: [{upstream: u, percent: 60}, {upstream: u, percent: 50}]}}"
        ),
    }
    for field, plugins in cases.items():
        done = check_plugins(tmp_path, plugins)
        assert done.returncode == 2, (field, done.stdout, done.stderr)
        assert f"routes[0].{field}" in done.stderr, (field, done.stderr)
