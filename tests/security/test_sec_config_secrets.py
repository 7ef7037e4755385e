"""Config errors never quote a secret: `pygate check` (and so reload logs and admin API
answers, which use the same messages) names the field and the shape it got instead.

Each secret below is written wrongly (a number where a string is wanted, a scalar where
a list is, a jwt secret that is too short) so that it appears in an error message.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from support.gateway import run_cli

SECRETS = {
    "admin_token": "904417733",
    "named_token": "731190442",
    "serve_password": "55667788",
    "scalar_key": "12345678",
    "listed_key": "87654321",
    "basic_password": "24681357",
    "jwt_scalar": "13579246",
    "jwt_short": "short-jwt-secret-xyz",
    "ai_key": "99887766",
}


def _config(tmp_path: Path) -> Path:
    s = SECRETS
    path = tmp_path / "bad-secrets.yaml"
    path.write_text(
        textwrap.dedent(
            f"""\
            listen: 127.0.0.1:18080
            admin:
              token: {s["admin_token"]}
              tokens: [{{name: ops, token: {s["named_token"]}}}]
            log:
              serve:
                users: [{{name: ana, password: {s["serve_password"]}}}]
            upstreams: [{{name: u, targets: ["127.0.0.1:9"]}}]
            consumers:
              - name: alice
                keys: {s["scalar_key"]}
              - name: bob
                keys: [{s["listed_key"]}]
                basic_auth: [{{username: bob, password: {s["basic_password"]}}}]
            routes:
              - name: r1
                paths: ["/a/*"]
                upstream: u
                plugins:
                  jwt: {{secrets: {s["jwt_scalar"]}}}
              - name: r2
                paths: ["/b/*"]
                upstream: u
                plugins:
                  jwt: {{secrets: ["{s["jwt_short"]}"]}}
            ai:
              providers:
                - {{name: p, kind: openai, base_url: "http://127.0.0.1:9", keys: {s["ai_key"]}}}
            """
        )
    )
    return path


def test_check_reports_every_misplaced_secret_without_quoting_it(tmp_path):
    done = run_cli("check", "--config", str(_config(tmp_path)))
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    for name, secret in SECRETS.items():
        assert secret not in output, f"{name} quoted in: {output}"
    # Each one is still reported, at its field, with the shape that was wrong.
    for field in (
        "admin.token",
        "admin.tokens[0].token",
        "log.serve.users[0].password",
        "consumers[0].keys",
        "consumers[1].keys[0]",
        "consumers[1].basic_auth[0].password",
        "routes[0].plugins.jwt.secrets",
        "routes[1].plugins.jwt.secrets[0]",
        "ai.providers[0].keys",
    ):
        assert f": {field}: expected" in output, f"{field} not reported in: {output}"
    assert "got a number" in output


def test_values_of_ordinary_fields_are_still_quoted(tmp_path):
    path = tmp_path / "typo.yaml"
    path.write_text(
        'listen: 127.0.0.1:18080\nupstreams: [{name: u, targets: ["127.0.0.1:9"],'
        " balance: roundrobin}]\n"
    )
    done = run_cli("check", "--config", str(path))
    assert done.returncode == 2
    assert '"roundrobin"' in done.stdout + done.stderr
