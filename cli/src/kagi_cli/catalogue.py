"""``kagi catalogue``: documents generated from the topic catalogue, so they cannot drift from it.

- ``asyncapi``: an AsyncAPI 3 document for downstream consumers (JSON Schema of every event's data).
- ``strimzi``: a KafkaTopic per topic (and DLT) and a KafkaUser per service with ACLs to exactly
  the topics it writes and reads.
Both are checked in (``deploy/asyncapi.json``, ``deploy/k8s/base/kafka/``) and tested to be current.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kagi_shared.settings import Settings

if TYPE_CHECKING:
    from kagi_shared.topics import Topic

REPO = Path(__file__).resolve().parents[3]
ASYNCAPI_PATH = REPO / "deploy" / "asyncapi.json"
STRIMZI_DIR = REPO / "deploy" / "k8s" / "base" / "kafka"
SERVICES = ("lifecycle", "invite", "permissions", "notify", "audit", "gateway")
CLUSTER = "kagi"


def _name(topic: str) -> str:
    return topic.replace(".", "-").replace("_", "-")


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0: one channel per topic, one message per event type, CloudEvents envelope."""
    import msgspec

    from kagi_shared.events.envelope import Envelope
    from kagi_shared.topics import CATALOGUE

    types = [t for topic in CATALOGUE for t in topic.event_types]
    _, components = msgspec.json.schema_components([Envelope, *types], ref_template="#/components/schemas/{name}")
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for topic in CATALOGUE:
        refs = {}
        for cls in topic.event_types:
            tag = cls.__struct_config__.tag
            key = str(tag).replace(".", "_")
            messages[key] = {
                "name": tag,
                "title": cls.__name__,
                "summary": (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else tag,
                "contentType": "application/json",
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Envelope"},
                        {"type": "object", "properties": {"type": {"const": tag},
                                                          "data": {"$ref": f"#/components/schemas/{cls.__name__}"}}},
                    ]
                },
            }
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        channels[_name(topic.name)] = {
            "address": topic.name,
            "description": f"Key: {topic.key}. Written by {topic.producer}; read by "
                           f"{', '.join(topic.consumers) or 'downstream systems'}.",
            "messages": refs,
        }
        operations[f"publish_{_name(topic.name)}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{_name(topic.name)}"},
            "summary": f"{topic.producer} publishes to {topic.name}",
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kagi events",
            "version": "0.1.0",
            "description": "Every Kafka topic of Kagi. Messages are CloudEvents 1.0 in structured JSON mode; "
                           "the Kafka key is the envelope's subject (the aggregate id), and the header ce_id "
                           "repeats the event id. Consumers must be idempotent on id (delivery is at least once).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": components},
    }


def _topic_manifest(name: str, partitions: int, retention_days: int) -> dict[str, Any]:
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaTopic",
        "metadata": {"name": _name(name), "labels": {"strimzi.io/cluster": CLUSTER}},
        "spec": {
            "topicName": name,
            "partitions": partitions,
            "replicas": 3,
            "config": {"retention.ms": retention_days * 86_400_000, "min.insync.replicas": 2,
                       "cleanup.policy": "delete"},
        },
    }


def _acl(topic: str, operations: list[str], pattern: str = "literal", kind: str = "topic") -> dict[str, Any]:
    return {"resource": {"type": kind, "name": topic, "patternType": pattern}, "operations": operations}


def _writes(topic: Topic, service: str) -> bool:
    return service in [p.strip() for p in topic.producer.split(",")]


def _user_manifest(service: str) -> dict[str, Any]:
    from kagi_shared.topics import CATALOGUE

    acls = []
    for topic in CATALOGUE:
        if _writes(topic, service):
            # The relay also reads its own partitions to settle a claim after a crash.
            acls.append(_acl(topic.name, ["Write", "Describe", "Read"]))
        if service in topic.consumers:
            acls.append(_acl(topic.name, ["Read", "Describe"]))
            acls.append(_acl(topic.dlt, ["Write", "Describe"]))
    # faust's own group and internal topics (kagi-<service>-__assignor-__leader …).
    acls.append(_acl(f"kagi-{service}", ["Read"], kind="group"))
    acls.append(_acl(f"kagi-{service}-", ["All"], pattern="prefix"))
    return {
        "apiVersion": "kafka.strimzi.io/v1beta2",
        "kind": "KafkaUser",
        "metadata": {"name": f"kagi-{service}", "labels": {"strimzi.io/cluster": CLUSTER}},
        "spec": {"authentication": {"type": "tls"}, "authorization": {"type": "simple", "acls": acls}},
    }


def strimzi() -> dict[str, str]:
    """File name → YAML text for deploy/k8s/base/kafka/."""
    import yaml

    from kagi_shared.topics import CATALOGUE

    topics = []
    for topic in CATALOGUE:
        topics.append(_topic_manifest(topic.name, topic.partitions, topic.retention_days))
        if topic.consumers:
            topics.append(_topic_manifest(topic.dlt, 1, 30))
    header = "# Generated by `kagi catalogue strimzi` from shared/src/kagi_shared/topics.py — do not edit.\n"
    files = {
        "topics.yaml": header + yaml.safe_dump_all(topics, sort_keys=False, allow_unicode=True),
        "users.yaml": header + yaml.safe_dump_all([_user_manifest(s) for s in SERVICES], sort_keys=False),
    }
    files["kustomization.yaml"] = header + yaml.safe_dump(
        {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
         "resources": ["topics.yaml", "users.yaml"]}, sort_keys=False)
    return files


def asyncapi_text() -> str:
    return json.dumps(asyncapi(), ensure_ascii=False, indent=2) + "\n"


def cmd_catalogue(args: argparse.Namespace, settings: Settings) -> int:
    if args.action == "asyncapi":
        if args.write:
            ASYNCAPI_PATH.write_text(asyncapi_text(), encoding="utf-8")
            print(f"wrote {ASYNCAPI_PATH}")
        else:
            print(asyncapi_text(), end="")
    elif args.action == "strimzi":
        STRIMZI_DIR.mkdir(parents=True, exist_ok=True)
        for name, text in strimzi().items():
            (STRIMZI_DIR / name).write_text(text, encoding="utf-8")
            print(f"wrote {STRIMZI_DIR / name}")
    else:
        from kagi_shared.topics import CATALOGUE

        for topic in CATALOGUE:
            print(f"{topic.name:<32} key={topic.key:<20} {', '.join(topic.type_names) or '-'}")
    return 0


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser("catalogue", help="topic catalogue, AsyncAPI and Strimzi manifests",
                            description="Documents generated from the topic catalogue")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", help="every topic with its key and event types",
                       description="Every topic with its key and event types").set_defaults(func=cmd_catalogue)
    asyncapi_cmd = actions.add_parser("asyncapi", help="the AsyncAPI 3.0 document of every topic",
                                      description="Print (or write) the AsyncAPI 3.0 document of every topic")
    asyncapi_cmd.add_argument("--write", action="store_true", help="write deploy/asyncapi.json instead of printing")
    asyncapi_cmd.set_defaults(func=cmd_catalogue)
    actions.add_parser("strimzi", help="write the KafkaTopic and KafkaUser manifests",
                       description="Write KafkaTopic and KafkaUser manifests under deploy/k8s/base/kafka/") \
        .set_defaults(func=cmd_catalogue)
