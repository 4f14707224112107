"""Generated documents stay current with the topic catalogue, and ACLs give each service exactly what it uses."""

from __future__ import annotations

import json

import yaml

from kagi_cli.catalogue import ASYNCAPI_PATH, STRIMZI_DIR, _name, asyncapi, asyncapi_text, strimzi
from kagi_shared.events import registered_types
from kagi_shared.topics import CATALOGUE, all_topic_names


def test_checked_in_asyncapi_is_current() -> None:
    assert ASYNCAPI_PATH.read_text(encoding="utf-8") == asyncapi_text(), \
        "deploy/asyncapi.json is stale: run `make asyncapi`"


def test_checked_in_strimzi_manifests_are_current() -> None:
    for name, text in strimzi().items():
        assert (STRIMZI_DIR / name).read_text(encoding="utf-8") == text, \
            f"deploy/k8s/base/kafka/{name} is stale: run `make asyncapi`"


def test_asyncapi_has_a_channel_per_topic_and_a_message_per_event_type() -> None:
    doc = asyncapi()
    assert doc["asyncapi"] == "3.0.0"
    assert {c["address"] for c in doc["channels"].values()} == set(all_topic_names(with_dlt=True))
    names = {m["name"] for m in doc["components"]["messages"].values()} - {"dead_letter"}
    assert names == {n for t in CATALOGUE for n in t.type_names}
    assert names <= set(registered_types())
    json.dumps(doc)  # serialisable as is


def test_every_consumed_topic_has_a_dlt_and_every_topic_a_manifest() -> None:
    topics = {d["spec"]["topicName"]: d for d in yaml.safe_load_all(strimzi()["topics.yaml"])}
    for topic in CATALOGUE:
        assert topic.name in topics
        assert topics[topic.name]["spec"]["partitions"] == topic.partitions
        assert topics[topic.name]["spec"]["config"]["min.insync.replicas"] == 2
        if topic.consumers:
            assert topic.dlt in topics


def test_service_acls_cover_exactly_what_each_service_reads_and_writes() -> None:
    users = {d["metadata"]["name"]: d for d in yaml.safe_load_all(strimzi()["users.yaml"])}
    acls = {name: {(a["resource"]["name"], op) for a in u["spec"]["authorization"]["acls"] for op in a["operations"]}
            for name, u in users.items()}
    assert ("notify.requests", "Read") in acls["kagi-notify"]
    assert ("notify.requests", "Write") in acls["kagi-invite"]
    assert ("notify.requests", "Read") not in acls["kagi-permissions"] or \
        ("notify.requests", "Write") in acls["kagi-permissions"]  # only the relay's read-back of what it wrote
    assert not any(topic == "invite.events" and op == "Write" for topic, op in acls["kagi-notify"])
    for topic in CATALOGUE:
        for service in topic.consumers:
            if f"kagi-{service}" in acls:
                assert (topic.name, "Read") in acls[f"kagi-{service}"]
                assert (topic.dlt, "Write") in acls[f"kagi-{service}"]


def test_asyncapi_names_consumer_groups_servers_and_formats() -> None:
    doc = asyncapi()
    receives = {op["bindings"]["kafka"]["groupId"]["const"]: op for op in doc["operations"].values()
                if op["action"] == "receive" and "bindings" in op}
    assert {"kagi-notify", "kagi-invite", "kagi-lifecycle", "kagi-permissions", "kagi-audit"} <= set(receives)
    for topic in CATALOGUE:
        channel = next(c for c in doc["channels"].values() if c["address"] == topic.name)
        read_by = [op for op in doc["operations"].values()
                   if op["action"] == "receive" and op["channel"]["$ref"].endswith(f"/{_name(topic.name)}")]
        assert len(read_by) == len(topic.consumers), topic.name
        assert channel["messages"]
    assert {s["protocol"] for s in doc["servers"].values()} == {"kafka", "kafka-secure"}
    schemas = doc["components"]["schemas"]
    assert schemas["Envelope"]["properties"]["time"]["format"] == "date-time"
    assert schemas["Envelope"]["properties"]["id"]["format"] == "uuid"
    assert schemas["StepUpCodeIssued"]["properties"]["expiresAt"]["format"] == "date-time"
    headers = schemas["CloudEventHeaders"]
    assert {"ce_id", "ce_type", "ce_source", "ce_time", "ce_specversion", "content-type"} <= set(headers["required"])
