"""Issue 17, item 6: every custom resource of the rendered overlays (Strimzi, MongoDB community operator,
prometheus-operator) against the CRD schema its operator installs, vendored under ``tests/k8s/crds``.

Strict, as ``kubectl apply --validate=strict`` is: a field the schema does not declare is an error (the API
server would silently prune it), unless the schema keeps unknown fields."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from tests.k8s.test_manifests import KUBECTL, OVERLAYS, _render

CRDS = Path(__file__).resolve().parent / "crds"


@cache
def schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the version's openAPIV3Schema, for every served version of every vendored CRD."""
    found = {}
    for path in sorted(CRDS.glob("*.yaml")):
        for crd in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if not crd or crd.get("kind") != "CustomResourceDefinition":
                continue
            group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
            for version in crd["spec"]["versions"]:
                if version.get("served"):
                    found[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return found


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Fields ``value`` has that ``schema`` neither declares nor allows (structural-schema semantics)."""
    problems = []
    if isinstance(value, dict) and schema.get("type") == "object" and \
            not schema.get("x-kubernetes-preserve-unknown-fields"):
        declared = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if path == "" and key == "metadata":  # ObjectMeta: the API server's, not the CRD's to describe
                continue
            if key in declared:
                problems += unknown_fields(item, declared[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                problems += unknown_fields(item, extra, f"{path}.{key}")
            elif extra is not True and not (path == "" and key in ("apiVersion", "kind", "metadata")):
                problems.append(f"{path}.{key}")
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            problems += unknown_fields(item, schema["items"], f"{path}[{i}]")
    return problems


def check(doc: dict[str, Any]) -> list[str]:
    schema = schemas().get((doc["apiVersion"], doc["kind"]))
    assert schema is not None, f"no vendored CRD serves {doc['apiVersion']} {doc['kind']}"
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in jsonschema.Draft7Validator(schema).iter_errors(doc)]
    return errors + [f"{field}: not in the schema" for field in unknown_fields(doc, schema)]


def test_the_vendored_crds_cover_every_kind_and_catch_mistakes() -> None:
    kinds = {kind for _, kind in schemas()}
    assert {"Kafka", "KafkaNodePool", "KafkaTopic", "KafkaUser", "MongoDBCommunity", "PodMonitor",
            "PrometheusRule"} <= kinds
    topic = {"apiVersion": "kafka.strimzi.io/v1beta2", "kind": "KafkaTopic", "metadata": {"name": "t"},
             "spec": {"partitions": "four", "replicas": 3, "retention": 7}}
    problems = check(topic)
    assert any("partitions" in p for p in problems) and any("spec.retention" in p for p in problems), problems


if KUBECTL:

    @pytest.mark.parametrize("overlay", sorted(OVERLAYS))
    def test_custom_resources_match_their_crds(overlay: str) -> None:
        custom = [doc for doc in _render(overlay) if "." in doc["apiVersion"].split("/")[0]
                  and not doc["apiVersion"].startswith(("apps/", "policy/", "autoscaling/", "networking.k8s.io/"))]
        assert len(custom) >= 30, len(custom)
        problems = {f"{d['kind']}/{d['metadata']['name']}": check(d) for d in custom}
        assert not {name: p for name, p in problems.items() if p}
