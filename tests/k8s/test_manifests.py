"""Static checks of the Kubernetes manifests under ``deploy/k8s``.

The base, the Grafana dashboard and the network policies are read with PyYAML
only. When ``kubectl`` is on PATH, both overlays are also rendered with
``kubectl kustomize`` and checked as a whole (references between objects,
infrastructure sizing, network paths, monitoring); when ``kubernetes_validate``
is importable as well, every built-in kind is validated against its offline
OpenAPI schema. Without those tools the tests that need them are simply not
generated (no skip markers).
"""

from __future__ import annotations

import ipaddress
import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

try:  # offline Kubernetes OpenAPI schemas, when the dev dependency is installed
    import kubernetes_validate
except ImportError:  # pragma: no cover - depends on the environment
    kubernetes_validate = None

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
OVERLAYS = {"dev": "kagi-dev", "prod": "kagi"}  # overlay -> namespace
DASHBOARD = K8S / "monitoring" / "kagi-dashboard.json"
METRICS_PY = ROOT / "shared" / "src" / "kagi_shared" / "metrics.py"

SERVICES = {"lifecycle": 8101, "invite": 8102, "permissions": 8103, "notify": 8104, "audit": 8105}
WORKER_METRICS_BASE = 9100
API_METRICS_BASE = 9110
WORKER_METRICS_OFFSET = {"lifecycle": 1, "invite": 2, "permissions": 3, "notify": 4, "audit": 5}

# process name -> (python module, HTTP port or None)
PROCESSES: dict[str, tuple[str, int | None]] = {"gateway": ("kagi_gateway", 8000)}
for _svc, _port in SERVICES.items():
    PROCESSES[f"{_svc}-api"] = (f"kagi_{_svc}.entrypoints.api", _port)
    PROCESSES[f"{_svc}-worker"] = (f"kagi_{_svc}.entrypoints.worker", None)

HTTP_PROCESSES = [name for name, (_, port) in PROCESSES.items() if port is not None]
WORKERS = [name for name, (_, port) in PROCESSES.items() if port is None]
APIS = [name for name in HTTP_PROCESSES if name.endswith("-api")]
AUTOSCALED = ["gateway", *APIS]
SMTP_SENDERS = {"notify-api", "notify-worker"}

KAFKA_CLUSTER = "kagi"
MONGODB = "kagi-mongodb"


def metrics_port(name: str) -> int:
    """Where a process serves Prometheus metrics, never where it answers requests: the worker base + offset, the
    base itself for the gateway, the API base + the same offset for a service API (issue 15, finding 9)."""
    if name == "gateway":
        return WORKER_METRICS_BASE
    service, _, kind = name.partition("-")
    return (API_METRICS_BASE if kind == "api" else WORKER_METRICS_BASE) + WORKER_METRICS_OFFSET[service]


def probe_port(name: str) -> int:
    """Where a process answers /health and /ready and its Service points: the HTTP port, or the worker's."""
    _, http = PROCESSES[name]
    return http if http is not None else metrics_port(name)


# --------------------------------------------------------------------------- loading


def _yaml_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.suffix in {".yaml", ".yml"})


def _load_base_docs() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in _yaml_files(BASE):
        if path.name == "kustomization.yaml":
            continue
        with path.open(encoding="utf-8") as fh:
            docs.extend(doc for doc in yaml.safe_load_all(fh) if doc)
    return docs


DOCS = _load_base_docs()


def _by_kind(kind: str, docs: list[dict[str, Any]] = DOCS) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for doc in docs if doc.get("kind") == kind}


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


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels and matchExpressions); {} selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    for expr in selector.get("matchExpressions", []):
        key, op, values = expr["key"], expr["operator"], expr.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[op]
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------- network model


@dataclass(frozen=True)
class Pod:
    name: str
    namespace: str
    labels: dict[str, str] = field(hash=False)
    ports: dict[str, int] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class Ip:
    address: str


Endpoint = Pod | Ip
INTERNET = Ip("203.0.113.7")


def _pods(docs: list[dict[str, Any]], namespace: str) -> dict[str, Pod]:
    """The pods the manifests produce: each Deployment's, plus those the operators create.

    Operator-managed pods carry the labels Strimzi and the MongoDB community operator give them
    (strimzi.io/cluster + strimzi.io/kind + strimzi.io/name; app: <name>-svc). The base has no
    infrastructure resources, so the pods of the expected cluster names stand in for them there.
    """
    pods: dict[str, Pod] = {}
    for name, dep in _by_kind("Deployment", docs).items():
        container = _container(dep)
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
        pods[name] = Pod(name, namespace, dep["spec"]["template"]["metadata"]["labels"], ports)
    kafkas = set(_by_kind("Kafka", docs)) or {KAFKA_CLUSTER}
    mongos = set(_by_kind("MongoDBCommunity", docs)) or {MONGODB}
    for kafka in kafkas:
        common = {"strimzi.io/cluster": kafka, "strimzi.io/kind": "Kafka"}
        pods[f"{kafka}-broker"] = Pod(
            f"{kafka}-broker", namespace, common | {"strimzi.io/name": f"{kafka}-kafka"},
            {"tcp-ctrlplane": 9090, "tcp-replication": 9091, "tcp-clients": 9092, "tcp-clientstls": 9093},
        )
        pods[f"{kafka}-entity-operator"] = Pod(
            f"{kafka}-entity-operator", namespace, common | {"strimzi.io/name": f"{kafka}-entity-operator"}
        )
        pods[f"{kafka}-kafka-exporter"] = Pod(
            f"{kafka}-kafka-exporter", namespace, common | {"strimzi.io/name": f"{kafka}-kafka-exporter"},
            {"tcp-prometheus": 9404},
        )
    for mongo in mongos:
        pods[mongo] = Pod(mongo, namespace, {"app": f"{mongo}-svc"}, {"mongodb": 27017})
    return pods


KUBE_DNS = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53})
PROMETHEUS = Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"})
STRANGER = Pod("stranger", "elsewhere", {"app.kubernetes.io/name": "gateway"})  # same labels, other namespace


def _peer_matches(peer: dict[str, Any], policy_ns: str, endpoint: Endpoint) -> bool:
    if "ipBlock" in peer:
        if not isinstance(endpoint, Ip):
            return False
        address = ipaddress.ip_address(endpoint.address)
        block = peer["ipBlock"]
        return address in ipaddress.ip_network(block["cidr"]) and not any(
            address in ipaddress.ip_network(e) for e in block.get("except", [])
        )
    if isinstance(endpoint, Ip):
        return False
    if "namespaceSelector" in peer:
        ns_ok = _selects(peer["namespaceSelector"], {"kubernetes.io/metadata.name": endpoint.namespace})
    else:
        ns_ok = endpoint.namespace == policy_ns
    return ns_ok and _selects(peer.get("podSelector"), endpoint.labels)


def _port_matches(rule_ports: list[dict[str, Any]] | None, dst: Endpoint, port: int, protocol: str) -> bool:
    if not rule_ports:
        return True
    for rp in rule_ports:
        if rp.get("protocol", "TCP") != protocol:
            continue
        if "port" not in rp:
            return True
        value = rp["port"]
        if isinstance(value, str):  # a named port resolves against the destination pod
            if isinstance(dst, Pod) and dst.ports.get(value) == port:
                return True
            continue
        if value <= port <= rp.get("endPort", value):
            return True
    return False


def _policy_types(policy: dict[str, Any]) -> list[str]:
    spec = policy["spec"]
    return spec.get("policyTypes") or (["Ingress"] + (["Egress"] if "egress" in spec else []))


def allowed(policies: list[dict[str, Any]], namespace: str, src: Endpoint, dst: Endpoint, port: int,
            protocol: str = "TCP", *, egress_only: bool = False) -> bool:
    """Whether the NetworkPolicies of ``namespace`` let ``src`` open a connection to ``dst:port``.

    ``egress_only`` judges the source's side alone (for destinations whose own policies are not in ``policies``).
    """

    def side(subject: Endpoint, direction: str, peer_key: str, other: Endpoint) -> bool:
        if not isinstance(subject, Pod) or subject.namespace != namespace:
            return True  # not governed by these policies
        governing = [
            p for p in policies
            if direction.capitalize() in _policy_types(p) and _selects(p["spec"]["podSelector"], subject.labels)
        ]
        if not governing:
            return True
        return any(
            (not rule.get(peer_key) or any(_peer_matches(peer, namespace, other) for peer in rule[peer_key]))
            and _port_matches(rule.get("ports"), dst, port, protocol)
            for p in governing
            for rule in p["spec"].get(direction, []) or []
        )

    return side(src, "egress", "to", dst) and (egress_only or side(dst, "ingress", "from", src))


def _check_process_paths(docs: list[dict[str, Any]], namespace: str, *, with_infra: bool) -> None:
    """Only the gateway is reachable from outside; processes reach Kafka, MongoDB, DNS, and notify SMTP.

    Without the infrastructure (the base alone), paths to Kafka and MongoDB are judged on the
    processes' egress side only: the policies admitting them at the other end come with deploy/k8s/infra.
    """
    policies = list(_by_kind("NetworkPolicy", docs).values())
    pods = _pods(docs, namespace)
    infra = {f"{KAFKA_CLUSTER}-broker", MONGODB}

    def ok(src: Endpoint, dst: Endpoint, port: int, protocol: str = "TCP") -> bool:
        egress_only = not with_infra and isinstance(dst, Pod) and dst.name in infra
        return allowed(policies, namespace, src, dst, port, protocol, egress_only=egress_only)

    broker, mongo = pods[f"{KAFKA_CLUSTER}-broker"], pods[MONGODB]
    for name in PROCESSES:
        pod = pods[name]
        port = probe_port(name)
        for outsider in (INTERNET, STRANGER):
            assert ok(outsider, pod, port) is (name == "gateway"), f"{outsider} -> {name}:{port}"
            # Metrics have a port of their own, closed to the internet and the cluster (issue 15, 9 and 11).
            assert not ok(outsider, pod, metrics_port(name)), f"{outsider} -> {name} metrics"
        for src in PROCESSES:
            if PROCESSES[name][1] is not None and src != name:
                expected = src == "gateway" and name in APIS
                assert ok(pods[src], pod, port) is expected, f"{src} -> {name}:{port}"
        # Infrastructure, DNS, and nothing else.
        for kafka_port in (9092, 9093):
            assert ok(pod, broker, kafka_port), f"{name} -> kafka:{kafka_port}"
        assert not ok(pod, broker, 9091), f"{name} must not reach the replication listener"
        assert ok(pod, mongo, 27017), f"{name} -> mongodb"
        assert not ok(pod, mongo, 27018)
        assert ok(pod, KUBE_DNS, 53, "UDP") and ok(pod, KUBE_DNS, 53, "TCP"), f"{name} -> dns"
        assert not ok(pod, INTERNET, 443), f"{name} must not reach the internet"
        assert not ok(pod, STRANGER, 8000)
        for smtp in (25, 587):
            assert ok(pod, INTERNET, smtp) is (name in SMTP_SENDERS), f"{name} -> smtp:{smtp}"
    assert not ok(pods["gateway"], pods["lifecycle-api"], 9999), "the gateway reaches API ports only"
    for api in APIS:
        assert not ok(pods[api], pods["gateway"], 8000)


# --------------------------------------------------------------------------- base


def test_base_has_exactly_the_expected_deployments() -> None:
    assert set(DEPLOYMENTS) == set(PROCESSES)
    assert len(DEPLOYMENTS) == 11


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
        assert labels["app.kubernetes.io/component"] == (
            "gateway" if name == "gateway" else "api" if name in APIS else "worker"
        )
    assert deployment["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == name


SECRETS_DIR = "/etc/kagi/secrets"


def expected_secret_files(name: str) -> dict[str, tuple[str, str, bool]]:
    """File under /etc/kagi/secrets -> (Secret, key, optional): what each process needs and nothing else.

    The token signing key only in the gateway, which holds no database credential; a service's API its own
    internal credential; a worker no internal credential (it serves no internal API); each service its own
    database user's connection string (written by the MongoDB operator, so optional without the infrastructure).
    """
    from kagi_shared.settings import PROCESS_NEEDS, require_secrets  # noqa: F401 - the same table

    if name == "gateway":
        return {**{var: ("kagi-gateway-secrets", var, False) for var in (
            "KAGI_SECURITY_JWT_SECRET", *(f"KAGI_SECURITY_INTERNAL_TOKEN_{s.upper()}" for s in SERVICES))},
            # External identity providers' client secrets (SNS連携), only where configured.
            "KAGI_FEDERATION_PROVIDERS": ("kagi-federation", "KAGI_FEDERATION_PROVIDERS", True)}
    service, kind = name.rsplit("-", 1)
    needs = [n for n in PROCESS_NEEDS[service] if not (kind == "worker" and n == "internal_token")]
    files = {f"KAGI_SECURITY_{n.upper()}": (f"kagi-{service}-secrets", f"KAGI_SECURITY_{n.upper()}", False)
             for n in needs}
    return files | {"MONGODB_URI": (f"kagi-mongodb-{service}-uri", "connectionString.standard", True)}


def secret_files(deployment: dict[str, Any]) -> dict[str, tuple[str, str, bool]]:
    """What the container finds under /etc/kagi/secrets: the projected volume mounted there."""
    container = _container(deployment)
    (mount,) = [m for m in container.get("volumeMounts", []) if m["mountPath"] == SECRETS_DIR]
    assert mount.get("readOnly") is True
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    files = {}
    for source in volumes[mount["name"]]["projected"]["sources"]:
        secret = source["secret"]
        for item in secret["items"]:
            files[item["path"]] = (secret["name"], item["key"], bool(secret.get("optional")))
    return files


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_loads_config_and_secret_files(name: str) -> None:
    container = _container(DEPLOYMENTS[name])
    env_from = container.get("envFrom", [])
    assert [src["configMapRef"]["name"] for src in env_from] == ["kagi-config"]
    # No secret in an environment variable (readable in /proc/<pid>/environ, inherited by children, dumped by
    # crash reporters): the settings loader reads them as files.
    env = {e["name"]: e for e in container.get("env", [])}
    assert not any("valueFrom" in e for e in env.values())
    assert env["KAGI_SECRETS_DIR"]["value"] == SECRETS_DIR
    assert secret_files(DEPLOYMENTS[name]) == expected_secret_files(name)


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
    assert pod_sc.get("seccompProfile", {}).get("type") == "RuntimeDefault"

    # A read-only root needs a writable /tmp.
    volumes = {v["name"]: v for v in pod_spec.get("volumes", [])}
    tmp_mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]  # noqa: S108
    assert len(tmp_mounts) == 1
    assert "emptyDir" in volumes[tmp_mounts[0]["name"]]

    resources = container.get("resources", {})
    for section in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources.get(section, {})), f"{name}: resources.{section}"


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_has_its_own_service_account_without_token(name: str) -> None:
    accounts = _by_kind("ServiceAccount")
    pod_spec = DEPLOYMENTS[name]["spec"]["template"]["spec"]
    assert pod_spec["serviceAccountName"] == name
    assert accounts[name]["automountServiceAccountToken"] is False
    assert pod_spec["automountServiceAccountToken"] is False


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_deployment_has_a_disruption_budget(name: str) -> None:
    budgets = [
        pdb for pdb in _by_kind("PodDisruptionBudget").values()
        if _selects(pdb["spec"]["selector"], DEPLOYMENTS[name]["spec"]["template"]["metadata"]["labels"])
    ]
    assert len(budgets) == 1, f"{name}: exactly one PodDisruptionBudget must cover its pods"
    spec = budgets[0]["spec"]
    # maxUnavailable (not minAvailable) so a single-replica dev deployment can still be drained.
    assert spec.get("maxUnavailable") == 1 and "minAvailable" not in spec


def test_autoscalers_cover_the_gateway_and_apis_only() -> None:
    hpas = _by_kind("HorizontalPodAutoscaler")
    targets = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in hpas.values()}
    assert set(targets) == set(AUTOSCALED)
    for name, hpa in targets.items():
        spec = hpa["spec"]
        assert spec["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert 1 <= spec["minReplicas"] <= spec["maxReplicas"]
        (metric,) = spec["metrics"]
        assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
        assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
        # The HPA owns the count: a replicas field would reset it on every apply.
        assert "replicas" not in DEPLOYMENTS[name]["spec"], f"{name}: drop spec.replicas, the HPA owns it"
        # CPU utilisation is measured against the request.
        assert "cpu" in _container(DEPLOYMENTS[name])["resources"]["requests"]
    for name in WORKERS:
        assert DEPLOYMENTS[name]["spec"]["replicas"] >= 1


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_metrics_are_announced_for_scraping(name: str) -> None:
    template = DEPLOYMENTS[name]["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    assert annotations["prometheus.io/port"] == str(metrics_port(name))
    declared = {p["containerPort"] for p in _container(DEPLOYMENTS[name]).get("ports", [])}
    assert metrics_port(name) in declared


@pytest.mark.parametrize("name", sorted(PROCESSES))
def test_every_process_has_a_service_and_probes(name: str) -> None:
    """APIs and the gateway on their HTTP port; workers on their metrics port, where a thread answers the probes."""
    port = probe_port(name)
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


@pytest.mark.parametrize("name", WORKERS)
def test_worker_exposes_only_its_metrics_port(name: str) -> None:
    container = _container(DEPLOYMENTS[name])
    assert container["ports"] == [{"name": "metrics", "containerPort": metrics_port(name)}]


def test_worker_metrics_ports_are_distinct() -> None:
    ports = [metrics_port(name) for name in WORKERS]
    assert len(set(ports)) == len(WORKERS)
    assert not set(ports) & {port for _, port in PROCESSES.values()}


def test_config_and_secret_exist() -> None:
    config = _by_kind("ConfigMap")["kagi-config"]["data"]
    assert config["KAGI_ENV"] == "prod"
    assert config["KAGI_HTTP_HOST"] == "0.0.0.0"  # noqa: S104 - the pod must listen on its IP
    assert config["KAGI_KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert config["KAGI_PORTS_WORKER_METRICS_BASE"] == str(WORKER_METRICS_BASE)
    assert config["KAGI_PORTS_API_METRICS_BASE"] == str(API_METRICS_BASE)
    for key in ("KAFKA_BOOTSTRAP_SERVERS", "MONGODB_URI", "SMTP_URL"):
        assert config[key]
    assert re.fullmatch(r"smtps?://[^/:]+:\d+(\?.*)?", config["SMTP_URL"]), "the SMTP relay is host:port config"
    for svc, port in SERVICES.items():
        assert config[f"KAGI_{svc.upper()}_URL"] == f"http://{svc}-api:{port}"
    assert all(isinstance(v, str) for v in config.values()), "ConfigMap values must be strings"
    from kagi_shared.settings import SmtpSettings

    senders = {k for k in config if k.startswith("KAGI_SMTP_") and k.endswith("_SENDER")}
    fields = {f"KAGI_SMTP_{name.upper()}" for name in SmtpSettings.__struct_fields__ if name.endswith("sender")}
    assert senders == fields, "every sender a template may name is set for production"

    assert not _by_kind("Secret"), "no Secret in the base: the overlays generate them (make k8s-secrets)"
    # Behind the ingress every peer is the ingress pod: only its network may name the client (issue 15, 3).
    proxies = [ipaddress.ip_network(p.strip()) for p in config["KAGI_EDGE_TRUSTED_PROXIES"].split(",")]
    assert proxies and all(net.is_private for net in proxies)


# --------------------------------------------------------------------------- Kafka mutual TLS

KAFKA_CA_SECRET = f"{KAFKA_CLUSTER}-cluster-ca-cert"  # Strimzi's cluster CA certificate
KAFKA_CA_DIR, KAFKA_USER_DIR = "/etc/kagi/kafka-ca", "/etc/kagi/kafka-user"
KAFKA_USERS_YAML = BASE / "kafka" / "users.yaml"


def _kafka_user_names() -> set[str]:
    with KAFKA_USERS_YAML.open(encoding="utf-8") as fh:
        return {doc["metadata"]["name"] for doc in yaml.safe_load_all(fh) if doc and doc["kind"] == "KafkaUser"}


def kafka_user(name: str) -> str:
    """The KafkaUser a process authenticates as: kagi-gateway, or kagi-<service> for its API and worker."""
    return "kagi-gateway" if name == "gateway" else f"kagi-{name.rsplit('-', 1)[0]}"


def _secret_mounts(deployment: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """mountPath -> (Secret name, volumeMount) for the container's Secret volumes."""
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"].get("volumes", [])}
    mounts = {}
    for mount in _container(deployment).get("volumeMounts", []):
        secret = volumes[mount["name"]].get("secret")
        if secret:
            mounts[mount["mountPath"]] = (secret["secretName"], mount)
    return mounts


def _check_kafka_tls(deployments: dict[str, dict[str, Any]], config: dict[str, str], users: set[str]) -> None:
    """The config points at the TLS listener; every process mounts the CA and its own KafkaUser's certificate."""
    assert config["KAFKA_BOOTSTRAP_SERVERS"] == f"{KAFKA_CLUSTER}-kafka-bootstrap:9093"
    assert config["KAGI_KAFKA_SECURITY_PROTOCOL"] == "SSL"
    assert config["KAGI_KAFKA_SSL_CAFILE"] == f"{KAFKA_CA_DIR}/ca.crt"
    assert config["KAGI_KAFKA_SSL_CERTFILE"] == f"{KAFKA_USER_DIR}/user.crt"
    assert config["KAGI_KAFKA_SSL_KEYFILE"] == f"{KAFKA_USER_DIR}/user.key"
    for name in PROCESSES:  # every process produces or consumes: workers, outbox-writing APIs, gateway audit
        deployment = deployments[name]
        mounts = _secret_mounts(deployment)
        volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
        expected = {KAFKA_CA_DIR: (KAFKA_CA_SECRET, {"ca.crt"}),
                    KAFKA_USER_DIR: (kafka_user(name), {"user.crt", "user.key"})}
        for path, (secret_name, keys) in expected.items():
            assert path in mounts, f"{name}: no Secret mounted at {path}"
            mounted, mount = mounts[path]
            assert mounted == secret_name, f"{name}: {path} mounts {mounted}, expected {secret_name}"
            assert mount.get("readOnly") is True, f"{name}: {path} must be read-only"
            assert not mount.get("subPath"), f"{name}: a subPath mount never sees Strimzi's certificate renewals"
            items = volumes[mount["name"]]["secret"].get("items")
            assert items is None or keys <= {i["key"] for i in items if i["key"] == i["path"]}, (
                f"{name}: {secret_name} must project {sorted(keys)} under their own names"
            )
        assert kafka_user(name) in users, f"{name}: no KafkaUser {kafka_user(name)} in {KAFKA_USERS_YAML.name}"


def test_kafka_users_exist_for_every_process() -> None:
    assert {kafka_user(name) for name in PROCESSES} == _kafka_user_names()


def test_processes_use_mutual_tls_to_kafka() -> None:
    _check_kafka_tls(DEPLOYMENTS, _by_kind("ConfigMap")["kagi-config"]["data"], _kafka_user_names())


def test_kafka_tls_check_catches_a_wrong_user_secret() -> None:
    """A process mounting another service's certificate would be denied by (or exceed) its ACLs."""
    import copy

    broken = copy.deepcopy(DEPLOYMENTS)
    for volume in broken["gateway"]["spec"]["template"]["spec"]["volumes"]:
        if volume.get("secret", {}).get("secretName") == "kagi-gateway":
            volume["secret"]["secretName"] = "kagi-audit"
    with pytest.raises(AssertionError, match="gateway"):
        _check_kafka_tls(broken, _by_kind("ConfigMap")["kagi-config"]["data"], _kafka_user_names())


def test_network_policies_deny_by_default() -> None:
    policies = _by_kind("NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert not deny.get("ingress") and not deny.get("egress")


def test_network_policies_open_only_the_intended_paths() -> None:
    _check_process_paths(DOCS, "kagi", with_infra=False)


@pytest.mark.parametrize("directory", ["base", "infra", "monitoring"])
def test_kustomization_lists_every_file(directory: str) -> None:
    root = K8S / directory
    kustomization = yaml.safe_load((root / "kustomization.yaml").read_text(encoding="utf-8"))
    if directory == "base":
        (labels,) = kustomization["labels"]
        assert labels["pairs"] == {"app.kubernetes.io/part-of": "kagi"}
        # Selectors stay as written: NetworkPolicy peers select Strimzi/MongoDB pods without this label.
        assert labels["includeSelectors"] is False
    listed = kustomization.get("resources", [])
    assert len(listed) == len(set(listed)), "duplicate resources"
    covered: set[str] = {f for gen in kustomization.get("configMapGenerator", []) for f in gen.get("files", [])}
    for resource in listed:
        path = root / resource
        if path.is_dir():  # a directory resource brings its own kustomization and the files it lists
            inner = yaml.safe_load((path / "kustomization.yaml").read_text(encoding="utf-8"))
            covered |= {f"{resource}/kustomization.yaml"} | {f"{resource}/{r}" for r in inner["resources"]}
        else:
            assert path.is_file(), f"listed resource {resource} does not exist"
            covered.add(resource)
    on_disk = {p.relative_to(root).as_posix() for p in _yaml_files(root)} | {
        p.relative_to(root).as_posix() for p in root.glob("*.json")
    }
    on_disk -= {"kustomization.yaml"}
    assert on_disk == covered, f"not listed in kustomization.yaml: {sorted(on_disk - covered)}"


# --------------------------------------------------------------------------- dashboard

REQUIRED_METRICS = (
    "kagi_http_requests_total",
    "kagi_http_request_duration_seconds_bucket",
    "kagi_events_consumed_total",
    "kagi_outbox_backlog",
    "kagi_outbox_published_total",
    "kagi_notify_deliveries_total",
    "kafka_consumergroup_lag",
    "kagi_lifecycle_accounts",
    "kagi_lifecycle_ladder_stages_applied_total",
    "kagi_permissions_requests",
    "kagi_permissions_system_states",
)


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]


def test_dashboard_panels_cover_the_metrics() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dashboard["panels"]:
        assert panel["title"] and panel["targets"], panel
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
    exprs = _dashboard_exprs()
    for metric in REQUIRED_METRICS:
        assert any(re.search(rf"\b{metric}\b", e) for e in exprs), f"no panel queries {metric}"
    assert any("histogram_quantile(0.99" in e for e in exprs), "latency p99 panel"
    assert any('status=~"5..' in e for e in exprs), "HTTP error panel"
    assert any('outcome="dead"' in e for e in exprs), "dead-letter panel"
    assert all(e.count("(") == e.count(")") for e in exprs), "unbalanced PromQL"


def _alert_rules() -> list[dict[str, Any]]:
    rule = yaml.safe_load((K8S / "monitoring" / "alerts.yaml").read_text(encoding="utf-8"))
    assert rule["kind"] == "PrometheusRule"
    return [r for group in rule["spec"]["groups"] for r in group["rules"]]


def test_alerts_cover_errors_lag_dead_letters_and_the_business_states() -> None:
    rules = _alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["annotations"]["summary"] and rule["labels"]["severity"] in {"page", "ticket"}, rule
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]
    exprs = " ".join(r["expr"] for r in rules)
    for metric in ("kagi_http_requests_total", "kafka_consumergroup_lag", "kagi_outbox_backlog",
                   "kagi_audit_spool_pending", "kagi_permissions_system_states",
                   "kagi_lifecycle_ladder_stages_applied_total"):
        assert metric in exprs, f"no alert on {metric}"


def test_dashboard_queries_only_metrics_the_code_defines() -> None:
    defined = set(re.findall(r'(?:Counter|Gauge|Histogram)\(\s*"(kagi_[a-z_]+)"', METRICS_PY.read_text()))
    assert defined, "metrics.py defines no kagi_ metric"
    for expr in [*_dashboard_exprs(), *(r["expr"] for r in _alert_rules())]:
        for used in re.findall(r"\bkagi_[a-z_]+", expr):
            base = re.sub(r"_(bucket|sum|count)$", "", used)
            assert used in defined or base in defined, f"dashboard queries unknown metric {used}"


# --------------------------------------------------------------------------- rendered overlays

KUBECTL = shutil.which("kubectl")


def render_copy(overlay: str, destination: Path,
                secrets: dict[str, dict[str, str]] | None = None) -> list[dict[str, Any]]:
    """Render a copy of deploy/k8s whose overlay has secrets from ``generate_secrets`` (what `make k8s-secrets`
    runs), or the given ones; never the developer's own git-ignored files."""
    import importlib.util

    tree = destination / "k8s"
    shutil.copytree(K8S, tree, ignore=shutil.ignore_patterns("secrets", "__pycache__"), dirs_exist_ok=True)
    spec = importlib.util.spec_from_file_location("generate_secrets", K8S / "generate_secrets.py")
    assert spec and spec.loader
    generator = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    generator.write(tree / "overlays" / overlay)
    for name, values in (secrets or {}).items():
        (tree / "overlays" / overlay / "secrets" / name).write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    result = subprocess.run(  # noqa: S603 - fixed argv, no shell
        [KUBECTL or "kubectl", "kustomize", str(tree / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def _render(overlay: str) -> list[dict[str, Any]]:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        return render_copy(overlay, Path(tmp))


def container_environment(docs: list[dict[str, Any]], name: str, secrets_dir: Path) -> dict[str, str]:
    """What the process of Deployment ``name`` sees: its ConfigMap and env, and its Secret files in ``secrets_dir``
    (as the kubelet projects them; an optional Secret that does not exist yet projects nothing)."""
    import base64

    deployment = _by_kind("Deployment", docs)[name]
    container = _container(deployment)
    config_maps, secrets = _by_kind("ConfigMap", docs), _by_kind("Secret", docs)
    env: dict[str, str] = {}
    for src in container.get("envFrom", []):
        env |= config_maps[src["configMapRef"]["name"]]["data"]
    env |= {e["name"]: e["value"] for e in container.get("env", [])}
    mount = next(m for m in container["volumeMounts"] if m["mountPath"] == env["KAGI_SECRETS_DIR"])
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    secrets_dir.mkdir(parents=True)
    for source in volume["projected"]["sources"]:
        secret = secrets.get(source["secret"]["name"])
        if secret is None:
            assert source["secret"].get("optional") is True
            continue
        for item in source["secret"]["items"]:
            (secrets_dir / item["path"]).write_bytes(base64.b64decode(secret["data"][item["key"]]))
    return env | {"KAGI_SECRETS_DIR": str(secrets_dir)}


def _check_references(docs: list[dict[str, Any]], namespace: str) -> None:
    """Every object is well-formed and everything it refers to exists in the same output."""
    seen: set[tuple[str, str]] = set()
    for doc in docs:
        assert doc.get("apiVersion") and doc.get("kind") and doc.get("metadata", {}).get("name"), doc
        assert doc["metadata"].get("namespace") == namespace, f"{doc['kind']}/{doc['metadata']['name']}"
        key = (doc["kind"], doc["metadata"]["name"])
        assert key not in seen, f"duplicate {key}"
        seen.add(key)

    deployments = _by_kind("Deployment", docs)
    accounts = _by_kind("ServiceAccount", docs)
    config_maps, secrets = _by_kind("ConfigMap", docs), _by_kind("Secret", docs)
    pods = _pods(docs, namespace)

    for name, dep in deployments.items():
        pod_spec = dep["spec"]["template"]["spec"]
        assert _selects(dep["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"])
        assert accounts[pod_spec["serviceAccountName"]]["automountServiceAccountToken"] is False
        container = _container(dep)
        assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert pod_spec["securityContext"]["runAsNonRoot"] is True
        if PROCESSES[name][1] is not None:
            assert container["readinessProbe"]["httpGet"] and container["livenessProbe"]["httpGet"], name
        for src in container.get("envFrom", []):
            if "configMapRef" in src:
                assert src["configMapRef"]["name"] in config_maps
            if "secretRef" in src:
                assert src["secretRef"]["name"] in secrets
        kafka_users = set(_by_kind("KafkaUser", docs))
        for volume in pod_spec.get("volumes", []):
            if "secret" in volume:  # Strimzi creates the cluster CA and one Secret per KafkaUser
                secret_name = volume["secret"]["secretName"]
                assert secret_name in set(secrets) | kafka_users | {KAFKA_CA_SECRET}, f"{name}: Secret {secret_name}"
        for source in (s for v in pod_spec.get("volumes", []) for s in v.get("projected", {}).get("sources", [])):
            ref = source["secret"]
            if ref["name"] not in secrets:
                assert ref.get("optional") is True, f"{name}: {ref['name']} is neither present nor optional"
            else:
                assert {i["key"] for i in ref["items"]} <= set(secrets[ref["name"]]["data"]), f"{name}: {ref}"

    for name, svc in _by_kind("Service", docs).items():
        backing = [d for d in deployments.values() if _selects({"matchLabels": svc["spec"]["selector"]},
                                                                d["spec"]["template"]["metadata"]["labels"])]
        assert len(backing) == 1, f"Service {name} must select the pods of exactly one Deployment"
        container = _container(backing[0])
        for sp in svc["spec"]["ports"]:
            _resolve_port(container, sp.get("targetPort", sp["port"]))

    for name, policy in _by_kind("NetworkPolicy", docs).items():
        selected = [p for p in pods.values() if _selects(policy["spec"]["podSelector"], p.labels)]
        assert selected, f"NetworkPolicy {name} selects no pod"
        for direction, peer_key in (("ingress", "from"), ("egress", "to")):
            for rule in policy["spec"].get(direction, []):
                for peer in rule.get(peer_key, []):
                    if "podSelector" in peer and "namespaceSelector" not in peer:
                        assert any(_selects(peer["podSelector"], p.labels) for p in pods.values()), (
                            f"NetworkPolicy {name}: {direction} peer selects no pod"
                        )

    for name, hpa in _by_kind("HorizontalPodAutoscaler", docs).items():
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment" and target["name"] in deployments, f"HPA {name} has no target"
        assert "replicas" not in deployments[target["name"]]["spec"], f"HPA {name}: its Deployment sets replicas"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]

    for name, pdb in _by_kind("PodDisruptionBudget", docs).items():
        covered = [d for d in deployments.values()
                   if _selects(pdb["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])]
        assert len(covered) == 1, f"PodDisruptionBudget {name} must select one Deployment's pods"

    for name, monitor in _by_kind("PodMonitor", docs).items():
        selected = [p for p in pods.values() if _selects(monitor["spec"]["selector"], p.labels)]
        assert selected, f"PodMonitor {name} selects no pod"
        for endpoint in monitor["spec"]["podMetricsEndpoints"]:
            assert any(endpoint["port"] in p.ports for p in selected), f"PodMonitor {name}: no pod has {endpoint}"


def _check_infrastructure(docs: list[dict[str, Any]], nodes: int) -> None:
    """Strimzi Kafka (KRaft, TLS listener) and the MongoDB replica set, consistent with the config."""
    (kafka,) = _by_kind("Kafka", docs).values()
    assert kafka["metadata"]["name"] == KAFKA_CLUSTER
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    listeners = {lst["port"]: lst for lst in kafka["spec"]["kafka"]["listeners"]}
    assert listeners[9093]["tls"] is True and listeners[9093]["authentication"]["type"] == "tls"
    assert all(lst["type"] == "internal" for lst in listeners.values()), "Kafka is not exposed outside the cluster"
    assert kafka["spec"]["kafka"]["authorization"]["type"] == "simple", "KafkaUser ACLs must be enforced"
    assert {"topicOperator", "userOperator"} <= set(kafka["spec"]["entityOperator"])
    assert "kafkaExporter" in kafka["spec"], "consumer lag comes from the Kafka exporter"

    pools = [p for p in _by_kind("KafkaNodePool", docs).values()
             if p["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER]
    assert sum(p["spec"]["replicas"] for p in pools) == nodes
    assert all({"controller", "broker"} <= set(p["spec"]["roles"]) for p in pools), "KRaft combined nodes"

    config = kafka["spec"]["kafka"]["config"]
    assert config["auto.create.topics.enable"] is False
    for key in ("default.replication.factor", "offsets.topic.replication.factor",
                "transaction.state.log.replication.factor"):
        assert config[key] == nodes, key
    assert 1 <= config["min.insync.replicas"] <= nodes and config["transaction.state.log.min.isr"] <= nodes

    topics, users = _by_kind("KafkaTopic", docs), _by_kind("KafkaUser", docs)
    assert topics and users
    for name, doc in (topics | users).items():
        assert doc["metadata"]["labels"]["strimzi.io/cluster"] == KAFKA_CLUSTER, name
    for name, topic in topics.items():
        replicas, min_isr = topic["spec"]["replicas"], topic["spec"]["config"]["min.insync.replicas"]
        assert replicas <= nodes, f"{name}: {replicas} replicas on {nodes} nodes"
        assert 1 <= min_isr <= replicas
        if nodes > 1:
            assert min_isr < replicas, f"{name}: one node down must not stop producers"
    for name, user in users.items():
        assert user["spec"]["authentication"]["type"] == "tls", name

    app_config = _by_kind("ConfigMap", docs)["kagi-config"]["data"]
    host, port = app_config["KAFKA_BOOTSTRAP_SERVERS"].split(":")
    assert host == f"{KAFKA_CLUSTER}-kafka-bootstrap" and int(port) in listeners
    assert listeners[int(port)].get("tls") is True, "ACLs are enforced: clients must use the mutual-TLS listener"
    _check_kafka_tls(_by_kind("Deployment", docs), app_config, set(users))

    (mongo,) = _by_kind("MongoDBCommunity", docs).values()
    assert mongo["metadata"]["name"] == MONGODB
    assert mongo["spec"]["type"] == "ReplicaSet" and mongo["spec"]["members"] == nodes
    assert f"{MONGODB}-svc" in app_config["MONGODB_URI"] and f"replicaSet={MONGODB}" in app_config["MONGODB_URI"]
    secrets = _by_kind("Secret", docs)
    users = {user["name"]: user for user in mongo["spec"]["users"]}
    assert set(users) == {f"kagi-{svc}" for svc in SERVICES}, "one database user per service, none for the gateway"
    custom = {role["role"]: role for role in mongo["spec"]["security"].get("roles", [])}
    for svc in SERVICES:
        user = users[f"kagi-{svc}"]
        assert user["passwordSecretRef"]["name"] in secrets
        assert user["connectionStringSecretName"] == f"kagi-mongodb-{svc}-uri"
        databases = set()
        for role in user["roles"]:
            if role["name"] in custom:
                databases |= {p["resource"]["db"] for p in custom[role["name"]]["privileges"]}
                if svc == "audit":  # the ledger: add and read only (issue 15, finding 8)
                    ledger = [p for p in custom[role["name"]]["privileges"] if p["resource"]["collection"] == ""]
                    assert ledger and not {"update", "remove"} & {a for p in ledger for a in p["actions"]}
            else:
                assert role["name"] in {"readWrite", "read"}, f"kagi-{svc}: {role['name']} is too wide"
                databases.add(role["db"])
        assert databases == {f"kagi_{svc}"}, f"kagi-{svc} reaches {databases}"
    for name, dep in _by_kind("Deployment", docs).items():
        files = secret_files(dep)
        if name == "gateway":
            assert "MONGODB_URI" not in files
        else:
            assert files["MONGODB_URI"][0] == users[f"kagi-{name.rsplit('-', 1)[0]}"]["connectionStringSecretName"]


def _check_infrastructure_paths(docs: list[dict[str, Any]], namespace: str) -> None:
    policies = list(_by_kind("NetworkPolicy", docs).values())
    pods = _pods(docs, namespace)
    broker, operator = pods[f"{KAFKA_CLUSTER}-broker"], pods[f"{KAFKA_CLUSTER}-entity-operator"]
    mongo = pods[MONGODB]

    def ok(src: Endpoint, dst: Endpoint, port: int) -> bool:
        return allowed(policies, namespace, src, dst, port)

    assert ok(broker, broker, 9091) and ok(broker, broker, 9090), "brokers replicate and form the quorum"
    assert ok(operator, broker, 9091), "the entity operator reaches the brokers"
    assert ok(operator, INTERNET, 443), "the entity operator reaches the Kubernetes API"
    assert not ok(broker, INTERNET, 443)
    assert ok(mongo, mongo, 27017), "replica set members replicate"
    for outsider in (INTERNET, STRANGER):
        assert not ok(outsider, mongo, 27017)
        assert not ok(outsider, broker, 9092)
    assert not ok(pods["gateway"], pods[f"{KAFKA_CLUSTER}-kafka-exporter"], 9404)


if KUBECTL:

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_overlay_renders(overlay: str) -> None:
        docs = _render(overlay)
        deployments = [doc for doc in docs if doc["kind"] == "Deployment"]
        assert len(deployments) == 11
        assert {d["metadata"]["name"] for d in deployments} == set(PROCESSES)
        namespaces = {doc["metadata"].get("namespace") for doc in docs}
        assert namespaces == {OVERLAYS[overlay]}, f"one namespace expected, got {namespaces}"
        for deployment in deployments:
            container = _container(deployment)
            image = container["image"]
            if overlay == "prod":  # by digest (issue 17, item 6), pulled every time
                assert re.fullmatch(r"[a-z0-9.\-]+/kagi@sha256:[0-9a-f]{64}", image), image
                assert container["imagePullPolicy"] == "Always"
            else:
                assert image == "kagi:0.1.0-dev" and container["imagePullPolicy"] == "IfNotPresent", image

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_every_process_starts_with_the_generated_secrets(overlay: str, tmp_path: Path) -> None:
        """Issue 15, finding 2: each container's environment (ConfigMap, env, Secret files) passes the production
        settings check of its own process, with every secret it needs."""
        from kagi_shared.settings import load_settings, require_secrets

        docs = _render(overlay)
        seen: dict[str, str] = {}
        for name in PROCESSES:
            env = container_environment(docs, name, tmp_path / name)
            settings = load_settings(env)
            assert settings.env == "prod"
            require_secrets(settings, name)
            for field in ("jwt_secret", "code_pepper", "internal_token", "audit_key"):
                value = getattr(settings.security, field)
                if value and field != "internal_token":
                    assert seen.setdefault(f"{field}:{name.split('-')[0]}", value) == value
            if name == "gateway":
                assert settings.edge.trusted_networks(), "the ingress CIDR"
                for svc in SERVICES:
                    api = load_settings(container_environment(docs, f"{svc}-api", tmp_path / f"{svc}-check"))
                    assert settings.internal_token_for(svc) == api.security.internal_token, svc
            else:
                assert not settings.security.jwt_secret, f"{name} holds the token signing key"
            # Issue 15, finding 11: the services that ask for mail and notify share the key that seals requests;
            # nobody else holds it.
            sealing = bool(settings.security.notify_key)
            assert sealing == (name.split("-")[0] in ("lifecycle", "invite", "permissions", "notify")), name
            if sealing:
                assert seen.setdefault("notify_key", settings.security.notify_key) == settings.security.notify_key
        values = list(seen.values())
        assert len(values) == len(set(values)), "one secret per purpose and service"

    @pytest.mark.parametrize("placeholder", ["change-me", "dev-internal-token", "x" * 48])
    def test_a_placeholder_secret_stops_the_process_that_holds_it(placeholder: str, tmp_path: Path) -> None:
        from kagi_shared.settings import SettingsError, load_settings

        docs = render_copy("prod", tmp_path / "tree", {
            "gateway.env": {"KAGI_SECURITY_JWT_SECRET": placeholder,
                            **{f"KAGI_SECURITY_INTERNAL_TOKEN_{s.upper()}": f"{s}-{placeholder}" for s in SERVICES}},
            "audit.env": {"KAGI_SECURITY_INTERNAL_TOKEN": "audit-" + placeholder,
                          "KAGI_SECURITY_AUDIT_KEY": placeholder},
        })
        for name in ("gateway", "audit-api", "audit-worker"):
            with pytest.raises(SettingsError, match="KAGI_SECURITY_"):
                load_settings(container_environment(docs, name, tmp_path / name))
        load_settings(container_environment(docs, "lifecycle-api", tmp_path / "lifecycle-api"))  # untouched

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_overlay_references_are_consistent(overlay: str) -> None:
        _check_references(_render(overlay), OVERLAYS[overlay])

    @pytest.mark.parametrize(("overlay", "nodes"), [("dev", 1), ("prod", 3)])
    def test_overlay_infrastructure(overlay: str, nodes: int) -> None:
        _check_infrastructure(_render(overlay), nodes)

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_overlay_network_paths(overlay: str) -> None:
        docs = _render(overlay)
        _check_process_paths(docs, OVERLAYS[overlay], with_infra=True)
        _check_infrastructure_paths(docs, OVERLAYS[overlay])

    def test_prod_replicas_and_autoscaling() -> None:
        docs = _render("prod")
        hpas = {
            h["spec"]["scaleTargetRef"]["name"]: h["spec"] for h in _by_kind("HorizontalPodAutoscaler", docs).values()
        }
        assert hpas["gateway"]["minReplicas"] >= 3
        for name in APIS:
            assert hpas[name]["minReplicas"] >= 2, name
        deployments = _by_kind("Deployment", docs)
        for name in WORKERS:
            assert deployments[name]["spec"]["replicas"] >= 2, name

    def test_prod_monitoring() -> None:
        docs = _render("prod")
        namespace = OVERLAYS["prod"]
        dashboard = _by_kind("ConfigMap", docs)["kagi-grafana-dashboard"]
        assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert json.loads(dashboard["data"]["kagi-dashboard.json"]) == json.loads(DASHBOARD.read_text())
        monitored = {
            p.name for p in _pods(docs, namespace).values()
            for m in _by_kind("PodMonitor", docs).values() if _selects(m["spec"]["selector"], p.labels)
        }
        assert set(PROCESSES) | {f"{KAFKA_CLUSTER}-kafka-exporter"} <= monitored
        policies = list(_by_kind("NetworkPolicy", docs).values())
        pods = _pods(docs, namespace)
        for name in PROCESSES:
            assert allowed(policies, namespace, PROMETHEUS, pods[name], metrics_port(name)), name
            if name in APIS:  # the scraper never reaches an internal API (issue 15, finding 9)
                assert not allowed(policies, namespace, PROMETHEUS, pods[name], probe_port(name)), name
        assert allowed(policies, namespace, PROMETHEUS, pods[f"{KAFKA_CLUSTER}-kafka-exporter"], 9404)
        assert not allowed(policies, namespace, PROMETHEUS, pods[MONGODB], 27017)

    if kubernetes_validate is not None:

        @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
        def test_overlay_matches_the_kubernetes_schemas(overlay: str) -> None:
            """Built-in kinds against the offline OpenAPI schemas (strict: unknown fields fail).

            Custom resources (Strimzi, MongoDB, Prometheus operator) have no schema there: test_crds.py
            validates them against their operators' vendored CRDs.
            """
            custom = {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "MongoDBCommunity", "PodMonitor",
                      "PrometheusRule"}
            checked = 0
            for doc in _render(overlay):
                if doc["kind"] in custom:
                    continue
                kubernetes_validate.validate(doc, "1.32", strict=True)
                checked += 1
            assert checked >= 4 * len(PROCESSES)
