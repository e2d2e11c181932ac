"""deploy/: the Kubernetes manifests render and pass the Kubernetes schema, the systemd unit
and the Dockerfile keep their hardening, and the shipped configs load.

No kustomize binary can be fetched here, so ``render`` implements the kustomize features these
manifests use (resources, configMapGenerator, labels with selectors) and refuses any other key.
"""

from __future__ import annotations

import configparser
import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from tests.conftest import REPO
from worker.settings import load_settings

KUBE = REPO / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.30.0"
SUPPORTED = {"apiVersion", "kind", "resources", "configMapGenerator", "labels"}


def render(folder: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    assert not unknown, f"the test renderer does not implement {unknown}"
    documents: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        if path.is_dir():
            documents += render(path)
        else:
            documents += [d for d in yaml.safe_load_all(path.read_text()) if d]
    for generator in kustomization.get("configMapGenerator", []):
        data = {name: (folder / name).read_text() for name in generator["files"]}
        documents.append({"apiVersion": "v1", "kind": "ConfigMap",
                          "metadata": {"name": generator["name"]}, "data": data})  # fmt: skip
    for entry in kustomization.get("labels", []):
        for document in documents:
            add_labels(document, entry["pairs"], selectors=entry.get("includeSelectors", False))
    return documents


def add_labels(document: dict[str, Any], pairs: dict[str, str], *, selectors: bool) -> None:
    document["metadata"].setdefault("labels", {}).update(pairs)
    if not selectors:
        return
    spec = document.get("spec", {})
    if document["kind"] == "Service":
        spec.setdefault("selector", {}).update(pairs)
    elif "selector" in spec:
        spec["selector"].setdefault("matchLabels", {}).update(pairs)
    if "template" in spec:
        spec["template"]["metadata"].setdefault("labels", {}).update(pairs)


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in render(KUBE / "monitoring")}


def test_every_manifest_passes_the_kubernetes_schema(manifests: dict[str, dict[str, Any]]) -> None:
    assert set(manifests) == {"Deployment", "Service", "PodDisruptionBudget", "ConfigMap",
                              "ServiceMonitor"}  # fmt: skip
    for kind, document in manifests.items():
        if kind == "ServiceMonitor":  # a CRD: no schema in Kubernetes itself
            assert document["spec"]["endpoints"][0]["path"] == "/metrics"
            continue
        kubernetes_validate.validate(copy.deepcopy(document), KUBERNETES_VERSION, strict=True)


def test_the_deployment_is_hardened_and_probed(manifests: dict[str, dict[str, Any]]) -> None:
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"]
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }  # fmt: skip
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"] and container["resources"]["requests"]
    config = yaml.safe_load(manifests["ConfigMap"]["data"]["config.yaml"])
    assert pod["terminationGracePeriodSeconds"] > config["service"]["shutdown_grace_seconds"]
    labels = pod_labels = manifests["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert manifests["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert (
        manifests["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items()
        <= labels.items()
    )


def test_the_kubernetes_config_loads_with_its_secret_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"pageup__client_secret": "s", "hris__auth__api_key": "k",
                        "database__url": "postgresql://hb@db/hirebridge"}.items():  # fmt: skip
        (tmp_path / name).write_text(value)
    monkeypatch.setenv("HIREBRIDGE_SECRETS_DIR", str(tmp_path))
    settings = load_settings(KUBE / "config.yaml", required=True)
    assert settings.database.url == "postgresql://hb@db/hirebridge"
    assert settings.service.host == "0.0.0.0"  # noqa: S104 (the pod's probes come from outside)
    shipped = (REPO / "mappings" / "example_hris.yaml").read_text()
    assert (KUBE / "example_hris.yaml").read_text() == shipped, "copy drifted from mappings/"


def test_the_systemd_unit_is_hardened() -> None:
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]
    unit.read(REPO / "deploy" / "systemd" / "hirebridge.service")
    service = unit["Service"]
    expected = {"Type": "notify", "DynamicUser": "yes", "StateDirectory": "hirebridge",
                "ProtectSystem": "strict", "NoNewPrivileges": "yes", "PrivateTmp": "yes",
                "ExecReload": "/bin/kill -HUP $MAINPID", "KillSignal": "SIGTERM"}  # fmt: skip
    assert {key: service.get(key) for key in expected} == expected
    assert int(service["WatchdogSec"]) >= 10 and service["EnvironmentFile"].startswith("/etc/")
    assert int(service["TimeoutStopSec"]) > 25  # the default shutdown grace
    assert service["ExecStart"].endswith(" run")


def test_the_image_is_multi_stage_and_runs_as_a_user() -> None:
    lines = (REPO / "deploy" / "Dockerfile").read_text().splitlines()
    assert sum(line.startswith("FROM ") for line in lines) >= 2
    user = [line for line in lines if line.startswith("USER ")][-1]
    assert user.split()[1].split(":")[0] not in ("0", "root")
    assert "EXPOSE 9464" in lines


def test_the_inbound_overlay_publishes_only_the_push_paths_over_tls() -> None:
    documents = render(KUBE / "inbound")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    (ingress,) = [d for d in documents if d["kind"] == "Ingress"]
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/inbound/"]
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    (service,) = [d for d in documents if d["kind"] == "Service"]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}


def test_the_console_overlay_publishes_only_the_console_on_its_own_signed_in_host() -> None:
    documents = render(KUBE / "console")
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)
    (ingress,) = [d for d in documents if d["kind"] == "Ingress"]
    paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert paths == ["/console/"]
    assert ingress["spec"]["tls"] and ingress["spec"]["tls"][0]["secretName"]
    assert "auth-url" in " ".join(ingress["metadata"]["annotations"])
    (inbound,) = [d for d in render(KUBE / "inbound") if d["kind"] == "Ingress"]
    hosts = {rule["host"] for rule in inbound["spec"]["rules"]}
    assert hosts.isdisjoint(rule["host"] for rule in ingress["spec"]["rules"])
    inbound_paths = [p["path"] for rule in inbound["spec"]["rules"] for p in rule["http"]["paths"]]
    assert not any(path.startswith("/console") for path in inbound_paths)
