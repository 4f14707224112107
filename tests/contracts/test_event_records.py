"""Every record the flows produced, read by librdkafka (confluent-kafka), honours deploy/asyncapi.json: its headers
match the declared CloudEvents (or dead-letter) headers and agree with the envelope, its value is one of the channel's
messages and validates against that message's schema, formats included."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime
from typing import Any

import jsonschema
from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from kagi_cli.catalogue import ASYNCAPI_PATH
from kagi_shared.settings import Settings
from tests.contracts.conftest import Flows, end_offsets, librdkafka_config

# What the flows must have written (so a window that caught nothing fails instead of passing empty).
EXPECTED_TOPICS = {"contracts.upserted", "permissions.acks", "audit.events", "invite.events", "lifecycle.events",
                   "permissions.events", "notify.requests", "notify.deliveries", "permissions.grants.taxis"}

FORMATS = jsonschema.FormatChecker(formats=())


@FORMATS.checks("date-time", raises=ValueError)
def _date_time(value: object) -> bool:
    # RFC 3339: a date, a time and an offset (a naive time is not a point in time).
    return not isinstance(value, str) or ("T" in value and datetime.fromisoformat(value).tzinfo is not None)


@FORMATS.checks("date", raises=ValueError)
def _date(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.strptime(value, "%Y-%m-%d"))


@FORMATS.checks("uuid", raises=ValueError)
def _uuid(value: object) -> bool:
    return not isinstance(value, str) or bool(uuid.UUID(value))


class Document:
    def __init__(self) -> None:
        self.doc: dict[str, Any] = json.loads(ASYNCAPI_PATH.read_text(encoding="utf-8"))
        self.channels = {channel["address"]: channel for channel in self.doc["channels"].values()}

    def validator(self, schema: dict[str, Any]) -> jsonschema.Draft7Validator:
        # The schema travels with the document's components so its "#/components/..." references resolve.
        return jsonschema.Draft7Validator({**schema, "components": self.doc["components"]}, format_checker=FORMATS)

    def message(self, ref: dict[str, str]) -> dict[str, Any]:
        message: dict[str, Any] = self.doc["components"]["messages"][ref["$ref"].rsplit("/", 1)[1]]
        return message

    def messages_of(self, topic: str) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in map(self.message, self.channels[topic]["messages"].values())}


def read_window(settings: Settings, before: dict[tuple[str, int], int],
                until: dict[tuple[str, int], int]) -> list[Message]:
    """Every record between the two offset maps, by partition assignment (no group join needed)."""
    consumer = Consumer(librdkafka_config(settings, **{"group.id": f"contracts-reader-{uuid.uuid4()}",
                                                       "enable.auto.commit": False,
                                                       "auto.offset.reset": "earliest"}))
    todo = {tp: end for tp, end in until.items() if end > before.get(tp, 0)}
    records: list[Message] = []
    try:
        consumer.assign([TopicPartition(t, p, before.get((t, p), 0)) for t, p in todo])
        deadline = time.monotonic() + 60
        while todo and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is None:
                continue
            error = message.error()
            assert error is None or error.code() == KafkaError._PARTITION_EOF, error
            if error is not None:
                continue
            tp = (message.topic(), message.partition())
            if tp in todo and message.offset() < todo[tp]:
                records.append(message)
                if message.offset() + 1 >= todo[tp]:
                    del todo[tp]
        assert not todo, f"partitions not read to their end: {todo}"
    finally:
        consumer.close()
    return records


def problems_of(doc: Document, record: Message) -> list[str]:
    topic = str(record.topic())
    where = f"{topic}[{record.partition()}]@{record.offset()}"
    headers = {name: value.decode() for name, value in record.headers() or []}
    if topic.endswith(".dlt"):
        schema = doc.doc["components"]["schemas"]["DeadLetterHeaders"]
        return [f"{where} headers: {e.message}" for e in doc.validator(schema).iter_errors(headers)]
    if topic not in doc.channels:
        return [f"{where}: topic not in the document"]
    wrong = [f"{where} headers: {e.message}" for e in
             doc.validator(doc.doc["components"]["schemas"]["CloudEventHeaders"]).iter_errors(headers)]
    value = json.loads(record.value() or b"null")
    message = doc.messages_of(topic).get(value.get("type"))
    if message is None:
        return [*wrong, f"{where}: type {value.get('type')!r} is not a message of its channel"]
    wrong += [f"{where} payload: {e.message} at {list(e.absolute_path)}"
              for e in doc.validator(message["payload"]).iter_errors(value)]
    key = (record.key() or b"").decode()
    agree = {"ce_id": value["id"], "ce_type": value["type"], "ce_source": value["source"],
             "ce_subject": value["subject"], "ce_specversion": value.get("specversion", "1.0"),
             "ce_schemaversion": str(value.get("schemaversion", 1))}
    wrong += [f"{where}: header {name}={headers.get(name)!r} but the envelope says {expected!r}"
              for name, expected in agree.items() if headers.get(name) != expected]
    if key != value["subject"]:
        wrong.append(f"{where}: key {key!r} is not the subject {value['subject']!r}")
    if datetime.fromisoformat(headers.get("ce_time", "1970-01-01T00:00:00+00:00")) != \
            datetime.fromisoformat(value["time"]):
        wrong.append(f"{where}: ce_time {headers.get('ce_time')} is not the envelope's time {value['time']}")
    if value.get("traceparent") != headers.get("traceparent"):
        wrong.append(f"{where}: traceparent header and envelope differ")
    return wrong


def test_every_record_honours_the_asyncapi_document(flows: Flows, settings: Settings) -> None:
    doc = Document()
    records: list[Message] = []
    topics: set[str] = set()
    for _ in range(60):  # the relays and the gateway's audit publisher send shortly after the calls returned
        records = read_window(settings, flows.before, end_offsets(settings))
        topics = {str(r.topic()) for r in records}
        if EXPECTED_TOPICS <= topics:
            break
        time.sleep(1)
    assert EXPECTED_TOPICS <= topics, f"missing: {EXPECTED_TOPICS - topics}"
    wrong = [problem for record in records for problem in problems_of(doc, record)]
    assert wrong == [], "\n".join(wrong[:40])
    assert len(records) >= 20


def test_a_record_without_the_headers_is_caught() -> None:
    """The check above can fail: a record written as the simulator and the demo seed used to write them."""
    doc = Document()

    class Bare:
        def topic(self) -> str:
            return "permissions.acks"

        def partition(self) -> int:
            return 0

        def offset(self) -> int:
            return 0

        def key(self) -> bytes:
            return b"r-1"

        def headers(self) -> list[tuple[str, bytes]]:
            return [("ce_id", str(uuid.uuid4()).encode())]

        def value(self) -> bytes:
            return json.dumps({"id": str(uuid.uuid4()), "source": "simulator/taxis", "type": "kagi.permissions.x",
                               "time": "2026-01-01T00:00:00", "subject": "r-1", "data": {}}).encode()

    wrong = problems_of(doc, Bare())  # type: ignore[arg-type]
    assert any("'ce_type' is a required property" in w for w in wrong)
    assert any("is not a message of its channel" in w for w in wrong)
