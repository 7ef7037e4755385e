"""schemathesis against the running gateway's admin API, with the API's own OpenAPI
document (GET /openapi.json): no answer may be a 5xx, and every answer must match the
document (status codes, content types, bodies). Bounded: a few dozen examples per
operation, so the whole file takes well under two minutes.

One check is left out: "schema-valid data is accepted". JSON Schema cannot express
what the gateway checks across fields and entities (a route's upstream must exist,
names and keys are unique, two routes may not claim one path, a port is 1-65535), so
schema-valid data may rightly be refused with a 400 naming the field."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import positive_data_acceptance
from support.admin_api import TOKEN, AdminApi
from support.configs import simple_config
from support.gateway import Gateway

MAX_EXAMPLES = 25
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def admin_gateway(upstreams, tmp_path_factory) -> Iterator[Gateway]:
    cfg = simple_config(upstreams, admin={"token": TOKEN})
    cfg["consumers"] = [{"name": "alice", "keys": ["alice-key-1"]}]
    gateway = Gateway(tmp_path_factory.mktemp("gw-schemathesis"), cfg)
    try:
        gateway.start()
        yield gateway
        # Whatever schemathesis did, the gateway is still up and its admin API consistent.
        assert AdminApi(gateway).get("/config?format=json")[0] == 200
        assert gateway.stop() == 0
    finally:
        gateway.kill()


def run_operation(operation, mode: GenerationMode, **checks) -> int:
    """Up to MAX_EXAMPLES generated requests against one operation; returns how many."""
    calls = 0

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case) -> None:
        nonlocal calls
        calls += 1
        case.call_and_validate(headers=AUTH, **checks)

    try:
        check()
    except Exception as exc:
        raise AssertionError(f"{operation.label} ({mode.value}): {exc}") from exc
    return calls


def test_admin_api_conforms_to_its_openapi_document(admin_gateway: Gateway):
    # Driven by hand rather than with schemathesis.pytest.from_fixture, whose lazy
    # parametrisation does not work with this pytest version.
    schema = schemathesis.openapi.from_url(admin_gateway.admin_url("/openapi.json"), headers=AUTH)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    calls = 0
    for operation in operations:
        # Schema-valid requests: no 5xx, and every answer as documented.
        calls += run_operation(
            operation, GenerationMode.POSITIVE, excluded_checks=[positive_data_acceptance]
        )
        # Schema-invalid ones (wrong types, missing fields, bad parameters): never a 5xx.
        calls += run_operation(operation, GenerationMode.NEGATIVE, checks=[not_a_server_error])
    assert calls >= len(operations) * 10


def test_openapi_document_describes_every_entity(admin_gateway: Gateway):
    status, document = AdminApi(admin_gateway).get("/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    schemas = document["components"]["schemas"]
    # Generated from the config's msgspec Structs, so the constraints are the loader's.
    assert schemas["Upstream"]["required"] == ["name", "targets"]
    assert schemas["Target"]["properties"]["weight"]["maximum"] == 10_000
    assert "key-auth" in schemas["RoutePlugins"]["properties"]
    assert schemas["RateLimitConfig"]["properties"]["per"]["default"] == "1s"
    for path in ("/upstreams/{name}", "/routes/{name}/plugins/{plugin}", "/audit", "/config"):
        assert path in document["paths"]
