"""request-validation: JSON-schema checks of the body, headers and query, through the
real gateway: valid requests pass unchanged, invalid ones get 400 before the upstream.
"""

from __future__ import annotations

import json

from support.builtin_gateway import JSON, builtin_gateway, check_plugins, sent_body
from support.client import assert_json_error, fetch
from support.configs import route


def plugin_routes() -> list[dict]:
    return [
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
    ]


gw = builtin_gateway(plugin_routes)


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
