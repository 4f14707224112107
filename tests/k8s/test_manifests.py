"""Static checks of the Kubernetes manifests under ``deploy/k8s``.

The base is read with PyYAML only. When ``kubectl`` is on PATH, the overlays are
also rendered with ``kubectl kustomize``; without it those tests are simply not
generated (no skip markers).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = ("dev", "prod")

SERVICES = {"lifecycle": 8101, "invite": 8102, "permissions": 8103, "notify": 8104}

# process name -> (python module, HTTP port or None)
PROCESSES: dict[str, tuple[str, int | None]] = {"gateway": ("kagi_gateway", 8000)}
for _svc, _port in SERVICES.items():
    PROCESSES[f"{_svc}-api"] = (f"kagi_{_svc}.entrypoints.api", _port)
    PROCESSES[f"{_svc}-worker"] = (f"kagi_{_svc}.entrypoints.worker", None)

HTTP_PROCESSES = [name for name, (_, port) in PROCESSES.items() if port is not None]


def _base_yaml_files() -> list[Path]:
    return sorted(p for p in BASE.rglob("*") if p.suffix in {".yaml", ".yml"})


def _load_base_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in _base_yaml_files():
        if path.name == "kustomization.yaml":
            continue
        with path.open(encoding="utf-8") as fh:
            docs.extend(doc for doc in yaml.safe_load_all(fh) if doc)
    return docs


DOCS = _load_base_docs()


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in DOCS if doc.get("kind") == kind}


DEPLOYMENTS = _by_kind("Deployment")
SERVICES_K8S = _by_kind("Service")


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    containers = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, "one container per process"
    return containers[0]


def _resolve_port(container: dict[str, Any], port: int | str) -> int:
    """A probe or Service port may be a number or a container port's name."""
    if isinstance(port, int):
        return port
    for declared in container.get("ports", []):
        if declared.get("name") == port:
            return declared["containerPort"]
    raise AssertionError(f"port name {port!r} not declared by container {container['name']!r}")


def test_base_has_exactly_the_expected_deployments() -> None:
    assert set(DEPLOYMENTS) == set(PROCESSES)


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_runs_its_module(name: str) -> None:
    module, _ = PROCESSES[name]
    deployment = DEPLOYMENTS[name]
    container = _container(deployment)
    assert container["command"] == ["python", "-m", module]
    assert container["image"] == "kagi:0.1.0"
    assert container["imagePullPolicy"] == "IfNotPresent"
    for labels in (deployment["metadata"]["labels"], deployment["spec"]["template"]["metadata"]["labels"]):
        assert labels["app.kubernetes.io/name"] == name
        assert labels["app.kubernetes.io/part-of"] == "kagi"
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_loads_config_and_secrets(name: str) -> None:
    env_from = _container(DEPLOYMENTS[name]).get("envFrom", [])
    config_maps = {src["configMapRef"]["name"] for src in env_from if "configMapRef" in src}
    secrets = {src["secretRef"]["name"] for src in env_from if "secretRef" in src}
    assert "kagi-config" in config_maps
    assert "kagi-secrets" in secrets


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_is_locked_down(name: str) -> None:
    pod_spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    container = _container(DEPLOYMENTS[name])
    pod_sc = pod_spec.get("securityContext", {})
    sc = container.get("securityContext", {})

    # Container-level settings override pod-level ones.
    assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
    assert sc.get("runAsUser", pod_sc.get("runAsUser")) == 10001
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert sc.get("capabilities", {}).get("drop") == ["ALL"]

    # A read-only root needs a writable /tmp.
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108
    assert len(tmp_mounts) == 1
    assert "emptyDir" in volumes[tmp_mounts[0]["name"]]

    resources = container.get("resources", {})
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{name}: resources.{section}"


@pytest.mark.parametrize("name", HTTP_PROCESSES)
def test_http_process_has_service_and_probes(name: str) -> None:
    _, port = PROCESSES[name]
    deployment = DEPLOYMENTS[name]
    container = _container(deployment)
    assert port in [p["containerPort"] for p in container.get("ports", [])]

    assert name in SERVICES_K8S, f"no Service for {name}"
    service = SERVICES_K8S[name]
    assert service["spec"].get("type", "ClusterIP") == "ClusterIP"
    selector = service["spec"]["selector"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert selector.items() <= pod_labels.items(), "Service selector must match the pods"
    service_ports = service["spec"]["ports"]
    assert any(
        sp["port"] == port and _resolve_port(container, sp.get("targetPort", sp["port"])) == port
        for sp in service_ports
    ), f"Service {name} does not target port {port}"

    for probe_kind, path in (("readinessProbe", "/ready"), ("livenessProbe", "/health")):
        http_get = container.get(probe_kind, {}).get("httpGet")
        assert http_get is not None, f"{name}: {probe_kind} must be an HTTP GET"
        assert http_get["path"] == path
        assert _resolve_port(container, http_get["port"]) == port


@pytest.mark.parametrize("name", sorted(set(PROCESSES) - set(HTTP_PROCESSES)))
def test_worker_has_no_service_and_no_http_probe(name: str) -> None:
    assert name not in SERVICES_K8S
    container = _container(DEPLOYMENTS[name])
    assert not container.get("ports")
    for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
        assert "httpGet" not in container.get(probe_kind, {})


def test_config_and_secret_exist() -> None:
    config = _by_kind("ConfigMap")["kagi-config"]["data"]
    assert config["KAGI_ENV"] == "prod"
    assert config["KAGI_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - the pod must listen on its IP
    assert config["KAGI_KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_URL"):
        assert config[key]
    for svc, port in SERVICES.items():
        assert config[f"KAGI_{svc.upper()}_URL"] == f"http://{svc}-api:{port}"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"

    secret = _by_kind("Secret")["kagi-secrets"]
    data = secret.get("stringData", {}) | secret.get("data", {})
    assert {"KAGI_SECURITY_JWT_SECRET", "KAGI_SECURITY_INTERNAL_TOKEN"} <= set(data)


def test_kustomization_lists_every_file() -> None:
    kustomization = yaml.safe_load((BASE / "kustomization.yaml").read_text(encoding="utf-8"))
    assert kustomization["commonLabels"]["app.kubernetes.io/part-of"] == "kagi"
    listed = kustomization["resources"]
    assert len(listed) == len(set(listed)), "duplicate resources"
    covered: set[str] = set()
    for resource in listed:
        path = BASE / resource
        if path.is_dir():  # a directory resource brings its own kustomization and the files it lists
            inner = yaml.safe_load((path / "kustomization.yaml").read_text(encoding="utf-8"))
            covered |= {f"{resource}/kustomization.yaml"} | {f"{resource}/{r}" for r in inner["resources"]}
        else:
            assert path.is_file(), f"listed resource {resource} does not exist"
            covered.add(resource)
    on_disk = {p.relative_to(BASE).as_posix() for p in _base_yaml_files()} - {"kustomization.yaml"}
    assert on_disk == covered, f"not listed in kustomization.yaml: {sorted(on_disk - covered)}"


KUBECTL = shutil.which("kubectl")

if KUBECTL:

    @pytest.mark.parametrize("overlay", OVERLAYS)
    def test_overlay_renders(overlay: str) -> None:
        result = subprocess.run(  # noqa: S603 - fixed argv, no shell
            [KUBECTL, "kustomize", str(K8S / "overlays" / overlay)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        docs = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
        deployments = [doc for doc in docs if doc["kind"] == "Deployment"]
        assert len(deployments) == 9
        assert {d["metadata"]["name"] for d in deployments} == set(PROCESSES)
        namespaces = {doc["metadata"].get("namespace") for doc in docs}
        assert len(namespaces) == 1 and None not in namespaces, f"one namespace expected, got {namespaces}"
        for deployment in deployments:
            image = _container(deployment)["image"]
            assert image.split(":")[0] == "kagi", image
