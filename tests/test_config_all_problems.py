"""Every config problem in one run: `pygate check`, the bundled invalid example, the admin API.

Validation has stages (YAML and ${ENV}, the schema, each plugin's schema, the checks
across fields, the core's own compilation). Each stage reports everything it finds and
the next stage still looks at what was valid, without repeating a problem as others
that follow from it (a typo gives one error, not five).
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from support.admin_api import AdminApi, problem_paths
from support.gateway import cli_env
from test_admin_api import admin_config

REPO = Path(__file__).resolve().parent.parent
PROBLEM = re.compile(r"^config error: (?P<file>[^:]+):(?P<line>\d+): (?P<path>\S+): (?P<msg>.+)$")

# One mistake (or more) of every stage; the comment on a line is what `check` must say
# about it, as "path: words of the message". Lines without a comment must stay silent.
MANY_MISTAKES = """\
listen: localhost:18080             # listen: IP address
workers: 0                          # workers: expected an integer >= 1, got 0
admin:
  listen: 127.0.0.1:19180
  token: ${PYGATE_TEST_UNSET_TOKEN} # admin.token: environment variable PYGATE_TEST_UNSET_TOKEN
upstreams:
  - name: demo
    targets: ["127.0.0.1:9001"]
    retires: 3                      # upstreams[0].retires: did you mean retries?
  - name: broken
    targets: "127.0.0.1:9002"       # upstreams[1].targets: expected a list
consumers:
  - name: alice
    keys: ["alice-key-1"]
routes:
  - name: api
    paths: ["/api/*"]
    upstream: dmeo                  # routes[0].upstream: unknown upstream "dmeo"
    plugins:
      key-auth: {}
      rate-limit: {rate: fast, by: consumer}  # routes[0].plugins.rate-limit.rate: got "fast"
  - name: other
    paths: ["/other/*"]
    upstream: broken
    plugins:
      kee-auth: {}                  # routes[1].plugins.kee-auth: unknown plugin
      rate-limit: {rate: 5, by: consumer}
  - name: api                       # routes[2].name: duplicate name "api"
    paths: ["/third/*"]
    upstream: demo
  - name: jwt-one
    paths: ["/jwt-one/*"]
    upstream: demo
    plugins:
      jwt: {jwks: [{kty: nope}]}    # routes[3].plugins.jwt.jwks[0]: expected a JWK
  - name: jwt-two
    paths: ["/jwt-two/*"]
    upstream: demo
    plugins:
      jwt: {jwks: [{kty: nope}]}    # routes[4].plugins.jwt.jwks[0]: expected a JWK
"""


def expected_problems(text: str) -> list[tuple[int, str, str]]:
    """(line, path, words) from the `# path: words` comments of `text`."""
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        if "# " in line and not line.lstrip().startswith("#"):
            comment = line.split("# ", 1)[1]
            path, _, words = comment.partition(": ")
            out.append((number, path, words.strip()))
    return out


def run_check(path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in cli_env().items() if not k.startswith("PYGATE_TEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pygate", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def reported(res: subprocess.CompletedProcess, file: Path) -> list[tuple[int, str, str]]:
    lines = [line for line in res.stderr.splitlines() if line.startswith("config error:")]
    out = []
    for line in lines:
        match = PROBLEM.match(line)
        assert match, f"not FILE:LINE: PATH: MESSAGE: {line!r}\n{res.stderr}"
        assert match["file"] == str(file), line
        out.append((int(match["line"]), match["path"], match["msg"]))
    return out


def assert_reports_exactly(res, file: Path, expected: list[tuple[int, str, str]]) -> None:
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    got = reported(res, file)
    assert [(line, path) for line, path, _ in got] == [
        (line, path) for line, path, _ in expected
    ], res.stderr
    for (_, _, message), (_, path, words) in zip(got, expected, strict=True):
        assert words in message, (path, words, message)


def test_every_stage_reports_every_problem_in_one_run(tmp_path):
    path = tmp_path / "gw.yaml"
    path.write_text(MANY_MISTAKES)
    expected = expected_problems(MANY_MISTAKES)
    assert len(expected) == 11
    assert_reports_exactly(run_check(path), path, expected)


def test_one_typo_gives_one_error(tmp_path):
    base = MANY_MISTAKES.split("upstreams:\n", 1)[0].replace("localhost", "127.0.0.1")
    base = base.replace("workers: 0", "workers: 1").replace(
        "${PYGATE_TEST_UNSET_TOKEN}", "${PYGATE_TEST_UNSET_TOKEN:-}"
    )
    cases = {
        # An unset variable: not also "expected HOST:PORT, got ${...}" for the target,
        # and the route on that upstream is still checked.
        "unset_env_in_target": (
            'upstreams: [{name: u, targets: ["${PYGATE_TEST_UNSET}"]}]\n'
            "routes: [{name: r, paths: [/r], upstream: nope}]\n",
            ["upstreams[0].targets[0]", "routes[0].upstream"],
        ),
        # A broken upstream: its routes do not also get "unknown upstream".
        "bad_upstream": (
            "upstreams: [{name: u, targets: []}]\nroutes: [{name: r, paths: [/r], upstream: u}]\n",
            ["upstreams[0].targets"],
        ),
        # A misspelt auth plugin: rate-limit by consumer does not also complain.
        "plugin_typo": (
            "upstreams: [{name: u, targets: [127.0.0.1:1]}]\n"
            "consumers: [{name: c, keys: [k]}]\n"
            "routes: [{name: r, paths: [/r], upstream: u,"
            " plugins: {kee-auth: {}, rate-limit: {rate: 1, by: consumer}}}]\n",
            ["routes[0].plugins.kee-auth"],
        ),
        # A bad consumer: key-auth does not also say there are no consumers with keys.
        "bad_consumer": (
            "upstreams: [{name: u, targets: [127.0.0.1:1]}]\n"
            'consumers: [{name: "bad name", keys: [k]}]\n'
            "routes: [{name: r, paths: [/r], upstream: u, plugins: {key-auth: {}}}]\n",
            ["consumers[0].name"],
        ),
        # An upstream with no name to go by: routes on any upstream are not judged
        # (neither here nor by the core), since theirs may be the one that failed.
        "upstream_not_a_mapping": (
            "upstreams: [just-a-string]\nroutes: [{name: r, paths: [/r], upstream: u}]\n",
            ["upstreams[0]"],
        ),
        # A mistyped method: cors does not also say the methods lack OPTIONS.
        "method_typo": (
            "upstreams: [{name: u, targets: [127.0.0.1:1]}]\n"
            "routes: [{name: r, paths: [/r], upstream: u, methods: [GET, 'OPTIONS;'],"
            " plugins: {cors: {allow_origins: ['https://a.example']}}}]\n",
            ["routes[0].methods[1]"],
        ),
        # Consumers that are no list: key-auth (Python's check and the core's) is quiet.
        "consumers_not_a_list": (
            "upstreams: [{name: u, targets: [127.0.0.1:1]}]\nconsumers: 5\n"
            "routes: [{name: r, paths: [/r], upstream: u, plugins: {key-auth: {}}}]\n",
            ["consumers"],
        ),
        # A route that is not a mapping: one error, the others are still checked.
        "route_not_a_mapping": (
            "upstreams: [{name: u, targets: [127.0.0.1:1]}]\n"
            "routes: [just-a-string, {name: r, paths: [/r], upstream: nope}]\n",
            ["routes[0]", "routes[1].upstream"],
        ),
    }
    for name, (tail, paths) in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(base + tail)
        res = run_check(path)
        assert res.returncode == 2, (name, res.stdout, res.stderr)
        assert [p for _, p, _ in reported(res, path)] == paths, (name, res.stderr)


def test_core_problems_of_several_routes_in_one_run(tmp_path):
    # Only the core judges a JWK; it stops at its first error, yet each is reported.
    base = MANY_MISTAKES.split("upstreams:\n", 1)[0].replace("localhost", "127.0.0.1")
    base = base.replace("workers: 0", "workers: 1").replace(
        "${PYGATE_TEST_UNSET_TOKEN}", "${PYGATE_TEST_UNSET_TOKEN:-}"
    )
    text = (
        base
        + "upstreams: [{name: u, targets: [127.0.0.1:1]}]\nroutes:\n"
        + "".join(
            f"  - {{name: r{i}, paths: [/r{i}], upstream: u,"
            f" plugins: {{jwt: {{jwks: [{{kty: x}}]}}}}}}\n"
            for i in range(3)
        )
    )
    path = tmp_path / "gw.yaml"
    path.write_text(text)
    res = run_check(path)
    got = [p for _, p, _ in reported(res, path)]
    assert got == [f"routes[{i}].plugins.jwt.jwks[0]" for i in range(3)], res.stderr


def test_bundled_invalid_example_says_what_check_prints():
    path = REPO / "examples" / "invalid.yaml"
    text = path.read_text()
    expected = expected_problems(text)
    assert len(expected) >= 6, "examples/invalid.yaml should show several kinds of mistakes"
    res = subprocess.run(
        [sys.executable, "-m", "pygate", "check", "--config", "examples/invalid.yaml"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env={k: v for k, v in cli_env().items() if not k.startswith("PYGATE_")},
    )
    assert_reports_exactly(res, Path("examples/invalid.yaml"), expected)


def test_admin_api_lists_every_problem(make_gateway, upstreams):
    gw = make_gateway(admin_config(upstreams))
    api = AdminApi(gw)
    route = {
        "name": "bad",
        "paths": ["/ok", "no-slash"],  # schema
        "upstream": "nope",  # reference
        "plugins": {"rate-limit": {"rate": "fast"}, "kee-auth": {}},  # plugin schema, name
    }
    status, answer = api.post("/routes", route)
    assert status == 400, answer
    assert sorted(problem_paths(answer)) == [
        "routes[1].paths[1]",
        "routes[1].plugins.kee-auth",
        "routes[1].plugins.rate-limit.rate",
        "routes[1].upstream",
    ], answer
    assert all(set(p) >= {"path", "message"} for p in answer["problems"]), answer

    whole = copy.deepcopy(admin_config(upstreams))
    document = {section: whole.get(section, []) for section in ("upstreams", "consumers", "routes")}
    document["upstreams"][0]["retries"] = -1
    document["routes"][0]["upstream"] = "missing"
    document["consumers"].append({"name": "bob", "keys": ["alice-key-1"]})
    status, answer = api.post("/config", document)
    assert status == 400, answer
    assert sorted(problem_paths(answer)) == [
        "consumers[1].keys[0]",
        "routes[0].upstream",
        "upstreams[0].retries",
    ], answer


@pytest.fixture(autouse=True)
def _no_unset_variables_in_env():
    for name in ("PYGATE_TEST_UNSET", "PYGATE_TEST_UNSET_TOKEN"):
        assert name not in os.environ
