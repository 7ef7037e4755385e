"""deploy/helm/pygate without a `helm` binary (none on PyPI, apt or crates here).

What is checked: Chart.yaml's required fields (apiVersion v2, name, version as SemVer),
values.yaml against the chart's values.schema.json (as Helm itself does on install), and
the templates rendered with the default values and validated against the Kubernetes
schemas. The renderer below implements exactly the two constructs the templates use,
`{{ .Values.NAME }}` and `{{ .Release.Name }}`, and fails on any other `{{ ... }}`: a
template that starts using more of Go templates fails this test until it is rendered by
real Helm. Not checked: `helm lint` / `helm template` themselves.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

CHART = Path(__file__).resolve().parent.parent / "deploy" / "helm" / "pygate"
_ACTION = re.compile(r"\{\{(.*?)\}\}", re.S)
_VALUE = re.compile(r"^ \.Values\.([A-Za-z][A-Za-z0-9]*) $")
SEMVER = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")


def render(template: str, values: dict, release: str) -> str:
    def one(match: re.Match[str]) -> str:
        action = match.group(1)
        if action == " .Release.Name ":
            return release
        found = _VALUE.match(action)
        if found is None:
            raise AssertionError(f"template construct this test cannot render: {{{{{action}}}}}")
        return str(values[found.group(1)])  # KeyError: a value the chart does not define

    return _ACTION.sub(one, template)


def test_chart_yaml():
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2" and chart["name"] == "pygate"
    assert SEMVER.match(chart["version"]) and chart["type"] == "application"


def test_values_match_the_values_schema():
    schema = json.loads((CHART / "values.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.Draft202012Validator(schema).validate(values)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(schema).validate({**values, "adminPort": "9180"})


@pytest.mark.parametrize("path", sorted((CHART / "templates").glob("*.yaml")), ids=lambda p: p.name)
def test_template_renders_to_a_valid_kubernetes_object(path):
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    rendered = render(path.read_text(), values, "edge-gw")
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    assert docs, path
    for doc in docs:
        kubernetes_validate.validate(doc, "1.30.0", strict=True)
        assert doc["metadata"]["name"].startswith("edge-gw")


def test_renderer_refuses_what_it_does_not_implement():
    with pytest.raises(AssertionError, match="cannot render"):
        render("a: {{ .Values.x | default 1 }}", {"x": 1}, "r")
    with pytest.raises(KeyError):
        render("a: {{ .Values.missing }}", {}, "r")


def test_rendered_deployment_probes_use_the_admin_port():
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    doc = yaml.safe_load(render((CHART / "templates" / "deployment.yaml").read_text(), values, "r"))
    (container,) = doc["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports["admin"] == values["adminPort"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    assert doc["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == "r-config"
