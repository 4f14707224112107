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

import msgspec

from kagi_cli.commands import command_group
from kagi_shared.events.envelope import CLOUDEVENTS_JSON, Envelope
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


CE_HEADERS: dict[str, Any] = {
    "content-type": {"type": "string", "const": CLOUDEVENTS_JSON,
                     "description": "CloudEvents structured mode: the value is the whole event"},
    "ce_specversion": {"type": "string", "const": "1.0"},
    "ce_id": {"type": "string", "format": "uuid", "description": "The event id; deduplicate on it"},
    "ce_source": {"type": "string"},
    "ce_type": {"type": "string", "description": "The message name, e.g. kagi.invite.key_issued"},
    "ce_time": {"type": "string", "format": "date-time"},
    "ce_subject": {"type": "string", "description": "The aggregate id; equals the Kafka key"},
    "ce_schemaversion": {"type": "string", "pattern": "^[1-9][0-9]*$",
                         "description": "The data's schema version (see info.description)"},
    "traceparent": {"type": "string", "pattern": "^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$",
                    "description": "W3C Trace Context of the code that emitted the event"},
}
DLT_HEADERS: dict[str, Any] = {
    "dlt_origin_topic": {"type": "string"},
    "dlt_origin_partition": {"type": "string", "pattern": "^[0-9]+$"},
    "dlt_origin_offset": {"type": "string", "pattern": "^[0-9]+$"},
    "dlt_consumer": {"type": "string", "description": "The consumer group that gave up on the record"},
    "dlt_error": {"type": "string", "maxLength": 1000},
}
EMBEDDED_BROKER = "127.0.0.1:19092"
STRIMZI_BOOTSTRAP = "kagi-kafka-bootstrap:9093"
KAFKA_BINDING = "0.5.0"


def group_id(consumer: str) -> str | None:
    """The consumer group of a catalogue consumer: Kagi's services are ``kagi-<service>`` (the faust app id);
    a target system chooses its own."""
    return f"kagi-{consumer}" if consumer in SERVICES else None


def _with_formats(schemas: dict[str, Any], types: list[type[Any]]) -> dict[str, Any]:
    """msgspec writes a datetime as a plain string; give every datetime member ``format: date-time`` (and the
    envelope's id ``format: uuid``) so a consumer's validator and code generator know what they hold."""
    for cls in types:
        info = msgspec.inspect.type_info(cls)
        assert isinstance(info, msgspec.inspect.StructType)
        properties = schemas[cls.__name__]["properties"]
        for field in info.fields:
            _set_format(properties[field.encode_name], field.type)
    schemas["Envelope"]["properties"]["id"]["format"] = "uuid"
    return schemas


def _set_format(schema: dict[str, Any], kind: msgspec.inspect.Type) -> None:
    if isinstance(kind, msgspec.inspect.DateTimeType) and schema.get("type") == "string":
        schema["format"] = "date-time"
    elif isinstance(kind, msgspec.inspect.UnionType):
        for option in schema.get("anyOf", []):
            for member in kind.types:
                _set_format(option, member)
    elif isinstance(kind, msgspec.inspect.ListType | msgspec.inspect.SetType | msgspec.inspect.FrozenSetType) \
            and "items" in schema:
        _set_format(schema["items"], kind.item_type)


def asyncapi() -> dict[str, Any]:
    """AsyncAPI 3.0: a channel per topic and per dead-letter topic, a message per event type with its CloudEvents
    headers, a send operation per producer and a receive operation per consumer group, both servers."""
    from kagi_shared.topics import CATALOGUE  # every event module: loaded only by the commands that need them

    types = [t for topic in CATALOGUE for t in topic.event_types]
    _, components = msgspec.json.schema_components([Envelope, *types], ref_template="#/components/schemas/{name}")
    components = _with_formats(components, [Envelope, *types])
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    headers_ref = {"$ref": "#/components/schemas/CloudEventHeaders"}
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
                "headers": headers_ref,
                "payload": {
                    "allOf": [
                        {"$ref": "#/components/schemas/Envelope"},
                        {"type": "object", "properties": {"type": {"const": tag},
                                                          "data": {"$ref": f"#/components/schemas/{cls.__name__}"}}},
                    ]
                },
                "bindings": {"kafka": {"key": {"type": "string", "description": topic.key},
                                       "bindingVersion": KAFKA_BINDING}},
            }
            refs[key] = {"$ref": f"#/components/messages/{key}"}
        name = _name(topic.name)
        channels[name] = {
            "address": topic.name,
            "description": f"Key: {topic.key}. Written by {topic.producer}; read by "
                           f"{', '.join(topic.consumers) or 'downstream systems'}.",
            "messages": refs,
            "bindings": {"kafka": {"topic": topic.name, "partitions": topic.partitions,
                                   "topicConfiguration": {"retention.ms": topic.retention_days * 86_400_000},
                                   "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"publish_{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{name}"},
            "summary": f"{topic.producer} publishes to {topic.name}",
            "description": "Through the transactional outbox (at least once, in order per key)"
                           if topic.producer in SERVICES else f"{topic.producer} publish, keyed by {topic.key}",
        }
        for consumer in topic.consumers:
            group = group_id(consumer)
            receive: dict[str, Any] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{name}"},
                "summary": f"{consumer} reads {topic.name}",
                "description": f"Consumer group {group}: it handles each event once (inbox) and dead-letters "
                               f"what it cannot handle to {topic.dlt}." if group else
                               f"{consumer} reads with a consumer group of its own and acknowledges each command "
                               f"on permissions.acks.",
            }
            if group:
                receive["bindings"] = {"kafka": {"groupId": {"type": "string", "const": group},
                                                 "bindingVersion": KAFKA_BINDING}}
            operations[f"receive_{name}_{(group or consumer).replace(' ', '-').lower()}"] = receive
        if topic.consumers:
            channels[f"{name}-dlt"] = {
                "address": topic.dlt,
                "description": f"Dead letters of {topic.name}: a record a consumer group could not decode or "
                               f"handle after its retries, unchanged (key and value), with the origin and error "
                               f"in dlt_* headers. Nothing reads it automatically; an operator inspects and "
                               f"replays it.",
                "messages": {"dead_letter": {"$ref": "#/components/messages/dead_letter"}},
                "bindings": {"kafka": {"topic": topic.dlt, "partitions": 1, "bindingVersion": KAFKA_BINDING}},
            }
            operations[f"dead_letter_{name}"] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{name}-dlt"},
                "summary": f"{', '.join(topic.consumers)} dead-letter what they cannot handle from {topic.name}",
                "description": "After the consumer's retries, or at once for an undecodable record or a newer "
                               "schema version; the partition then moves on.",
            }
    messages["dead_letter"] = {
        "name": "dead_letter",
        "title": "Dead letter",
        "summary": "The original record's value, byte for byte (it may not be JSON at all)",
        "contentType": "application/octet-stream",
        "headers": {"$ref": "#/components/schemas/DeadLetterHeaders"},
        "payload": {"description": "The original value, unchanged"},
    }
    components["CloudEventHeaders"] = {
        "type": "object", "properties": CE_HEADERS,
        "required": [name for name in CE_HEADERS if name != "traceparent"],
    }
    components["DeadLetterHeaders"] = {
        "type": "object", "properties": {**DLT_HEADERS, **CE_HEADERS}, "required": list(DLT_HEADERS),
        "description": "dlt_* always; the CloudEvents headers too when the value was a readable envelope",
    }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Kagi events",
            "version": "0.1.0",
            "contact": {"name": "Kagi", "url": "https://kagi.example.jp/", "email": "kagi@kagi.example.jp"},
            "tags": [{"name": service, "description": f"Events of the {service} service"}
                     for service in SERVICES if service != "gateway"] + [{"name": "audit-trail",
                                                                          "description": "Admin and operator actions"}],
            "description": "Every Kafka topic of Kagi. Messages are CloudEvents 1.0 in structured JSON mode "
                           "(header content-type: application/cloudevents+json); the Kafka key is the envelope's "
                           "subject (the aggregate id), and the ce_* headers repeat the envelope's attributes. "
                           "Consumers must be idempotent on id (delivery is at least once). schemaversion grows "
                           "only on an incompatible change of an event's data; added optional members do not "
                           "change it, so ignore members you do not know. A consumer that meets a schemaversion "
                           "newer than it knows must not guess: Kagi's own consumers dead-letter it. "
                           "See docs/consuming-events.md.",
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {"host": EMBEDDED_BROKER, "protocol": "kafka",
                         "description": "The embedded broker of `make run` (plaintext, loopback; KAGI_PORTS_KAFKA "
                                        "moves it). Consumer groups need max.poll.interval.ms <= 10000 to join "
                                        "quickly; see docs/consuming-events.md."},
            "strimzi": {"host": STRIMZI_BOOTSTRAP, "protocol": "kafka-secure",
                        "description": "The Strimzi cluster in Kubernetes: TLS with client certificates "
                                       "(a KafkaUser per client, ACLs per topic).",
                        "security": [{"$ref": "#/components/securitySchemes/mtls"}]},
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": components,
                       "securitySchemes": {"mtls": {"type": "X509",
                                                    "description": "A client certificate of a Strimzi KafkaUser"}}},
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
    actions = command_group(sub, "catalogue", "topic catalogue, AsyncAPI and Strimzi manifests",
                            "Documents generated from the topic catalogue")
    actions.add_parser("list", help="every topic with its key and event types",
                       description="Every topic with its key and event types").set_defaults(func=cmd_catalogue)
    asyncapi_cmd = actions.add_parser("asyncapi", help="the AsyncAPI 3.0 document of every topic",
                                      description="Print (or write) the AsyncAPI 3.0 document of every topic")
    asyncapi_cmd.add_argument("--write", action="store_true", help="write deploy/asyncapi.json instead of printing")
    asyncapi_cmd.set_defaults(func=cmd_catalogue)
    actions.add_parser("strimzi", help="write the KafkaTopic and KafkaUser manifests",
                       description="Write KafkaTopic and KafkaUser manifests under deploy/k8s/base/kafka/") \
        .set_defaults(func=cmd_catalogue)
