"""request-transformer: edits the headers, query and JSON body a request reaches the
upstream with, through the real gateway and the echo upstream (which reports what it
received); then the edit operations on their own (pygate/plugins/builtin/transform_ops.py).
"""

from __future__ import annotations

import json

from support.builtin_gateway import JSON, builtin_gateway, sent_body
from support.client import fetch
from support.configs import route


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
    ]


gw = builtin_gateway(plugin_routes)


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


def test_transform_ops_follow_kong_semantics() -> None:
    from pygate.plugins.builtin.transform_ops import JsonEdits, PairEdits, edit_json, edit_pairs

    pairs = [("X-A", "1"), ("x-a", "2"), ("X-B", "3")]
    edits = PairEdits(replace={"x-a": "9", "x-missing": "0"}, add={"X-B": "no", "X-C": "4"})
    assert edit_pairs(pairs, edits, case_insensitive=True) == [
        ("x-a", "9"),
        ("X-B", "3"),
        ("X-C", "4"),
    ]
    assert edit_pairs([("A", "1")], PairEdits(remove=["a"]), case_insensitive=False) == [
        ("A", "1")  # query args are case-sensitive
    ]
    doc = {"one": 1, "many": [1], "old": "x"}
    edits = JsonEdits(rename={"old": "new"}, append={"one": 2, "many": 2, "none": 3})
    assert edit_json(doc, edits) == {"one": [1, 2], "many": [1, 2], "new": "x", "none": [3]}
