"""deploy/'s container artefacts: the Kubernetes manifests against the Kubernetes API
schemas (kubernetes-validate, offline, strict: unknown fields fail), the compose file
against the Compose Specification's JSON schema, and the Dockerfile's build and install
steps against README's "Install from a wheel" steps.

Not run here (no registry for base images, no cluster): `docker build` and a real
`docker compose up` / `kubectl apply`. tests/data/compose_spec.json is the compose-spec
schema as shipped in the docker-compose 1.29.2 wheel (compose/config/compose_spec.json).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
MANIFESTS = sorted((DEPLOY / "kubernetes").glob("*.yaml"))
COMPOSE = DEPLOY / "docker" / "compose.yaml"
K8S_VERSION = "1.30.0"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path):
    for doc in yaml.safe_load_all(path.read_text()):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest():
    doc = yaml.safe_load((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    doc["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["port"] = []
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kubernetes_objects_and_probes():
    kinds = {yaml.safe_load(p.read_text())["kind"] for p in MANIFESTS}
    assert kinds >= {"Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"}  # fmt: skip
    deployment = yaml.safe_load((DEPLOY / "kubernetes" / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "admin"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "admin"}
    # The ConfigMap's config is the compose nodes' config, and its admin listen is the
    # port the probes use, on all addresses (the kubelet calls the pod IP).
    config_map = yaml.safe_load((DEPLOY / "kubernetes" / "configmap.yaml").read_text())
    gateway_yaml = config_map["data"]["gateway.yaml"]
    assert gateway_yaml == (DEPLOY / "docker" / "gateway-cluster.yaml").read_text()
    config = yaml.safe_load(gateway_yaml)
    assert config["admin"]["listen"] == f"0.0.0.0:{ports['admin']}"
    assert config["listen"] == f"0.0.0.0:{ports['http']}"
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_compose_file_validates_against_the_compose_spec():
    schema = json.loads((ROOT / "tests" / "data" / "compose_spec.json").read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    validator = jsonschema.Draft201909Validator  # the schema's own "$schema" draft
    validator.check_schema(schema)
    validator(schema).validate(compose)
    services = compose["services"]
    gateways = [name for name in services if name.startswith("gateway-")]
    assert len(gateways) == 3
    assert {"redis", "postgres", "clickhouse", "grafana"} <= set(services)
    env = services["gateway-1"]["environment"]
    assert env["PYGATE_ADMIN_STATE"].startswith("postgresql://")
    assert env["PYGATE_REDIS_URL"].startswith("redis://")
    assert env["PYGATE_LOG_STORE"].startswith("clickhouse://")
    # Grafana gets the committed dashboard and a provisioning directory that exists.
    mounts = services["grafana"]["volumes"]
    sources = {(COMPOSE.parent / m.split(":")[0]).resolve() for m in mounts}
    assert (DEPLOY / "grafana" / "pygate-dashboard.json").resolve() in sources
    assert all(s.exists() for s in sources), sources
    bad = dict(compose, services={"gateway-1": {**services["gateway-1"], "ports": "8081"}})
    with pytest.raises(jsonschema.ValidationError):
        validator(schema).validate(bad)


def _dockerfile_runs() -> list[str]:
    text = (DEPLOY / "Dockerfile").read_text().replace("\\\n", " ")
    return [m.group(1).strip() for m in re.finditer(r"^RUN (.+)$", text, re.M)]


def _readme_install_steps() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Install from a wheel", 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, "README's 'Install from a wheel' has no sh block"
    return [line.strip() for line in block.group(1).splitlines() if line.strip()
            and not line.strip().startswith("#")]  # fmt: skip


def test_dockerfile_steps_are_the_readme_install_steps():
    runs = _dockerfile_runs()
    steps = _readme_install_steps()
    # Every README step is a RUN of the Dockerfile, in the same order; the Dockerfile's
    # only other RUNs are the system packages of the Debian image and the user.
    at = [runs.index(step) for step in steps]
    assert at == sorted(at), (steps, runs)
    others = [r for r in runs if r not in steps]
    assert all(r.startswith(("apt-get ", "useradd ")) for r in others), others
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) == 2  # builder + runtime
    assert re.search(r"^USER (?!root)\w+", text, re.M)
    assert "HEALTHCHECK" in text and "/healthz" in text
