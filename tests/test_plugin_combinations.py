"""What no single plugin's file owns: the order the core runs plugins in, and the
config-error tables that cover several plugins in one loop (each plugin's own behaviour:
tests/test_plugin_<name>.py)."""

from __future__ import annotations

from support.auth_plugins import SECRET
from support.builtin_gateway import check_plugins
from support.client import assert_json_error, get
from support.gateway import run_cli


def test_auth_runs_before_rate_limit(gw):
    # Unauthenticated requests are refused with 401 and do not reach the limiter.
    assert_json_error(get(gw.url("/limited/x")), 401, "unauthorized")


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


def test_bad_auth_configs_name_the_field(tmp_path) -> None:
    cases = {
        "routes[0].plugins.jwt.secrets[0]": "{jwt: {secrets: [short]}}",
        "routes[0].plugins.jwt.jwks_file": "{jwt: {jwks_file: missing.json}}",
        "routes[0].plugins.jwt.jwks_url": "{jwt: {jwks_url: 'http://127.0.0.1:1/jwks'}}",
        "routes[0].plugins.basic-auth": "{basic-auth: {}}",
        "routes[0].plugins.jwt.jwks_refresh": (
            f"{{jwt: {{secrets: ['{SECRET}'], jwks_refresh: 100ms}}}}"
        ),
        "routes[0].plugins.jwt": f"{{key-auth: {{}}, jwt: {{secrets: ['{SECRET}']}}}}",
        "consumers[0].basic_auth[0].username": None,
    }
    for field, plugins in cases.items():
        path = tmp_path / "gw.yaml"
        consumer = "{name: a, keys: [k]}"
        if plugins is None:
            consumer = "{name: a, basic_auth: [{username: 'a:b', password: p}]}"
            plugins = "{}"
        path.write_text(
            "listen: 127.0.0.1:1\n"
            f"consumers: [{consumer}]\n"
            "upstreams: [{name: u, targets: ['127.0.0.1:9']}]\n"
            f"routes: [{{name: r, paths: ['/x'], upstream: u, plugins: {plugins}}}]\n"
        )
        done = run_cli("check", "--config", str(path))
        assert done.returncode == 2, (field, done.stdout, done.stderr)
        assert field in done.stderr, (field, done.stderr)


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
