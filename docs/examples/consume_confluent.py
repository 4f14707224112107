"""A downstream consumer of Kagi's events with confluent-kafka (librdkafka); see docs/consuming-events.md.

Run: python docs/examples/consume_confluent.py 127.0.0.1:19092 my-team permissions.events
tests/contracts/test_consumer_guide.py runs it against the embedded broker.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message

KNOWN_SCHEMA_VERSIONS = {"kagi.permissions.request_completed": 1}  # the versions this consumer was written for

SETTINGS: dict[str, Any] = {
    "enable.auto.commit": False,  # commit after handling: at least once, never "handled" before it was
    "auto.offset.reset": "earliest",  # a new group starts at the oldest record kept
    # The embedded broker (make run, CI) holds a group join for the whole rebalance timeout, which librdkafka
    # takes from max.poll.interval.ms (default 300 s): keep it at 10 s or less there. Real Kafka does not need it.
    "max.poll.interval.ms": 10_000,
    "session.timeout.ms": 6_000,  # librdkafka refuses a session timeout above max.poll.interval.ms
    "heartbeat.interval.ms": 1_000,
}


def consume(bootstrap: str, group: str, topics: list[str], handle: Callable[[dict[str, Any], dict[str, str]], None],
            *, stop: Callable[[], bool] = lambda: False) -> None:
    """Hand every event to ``handle(event, headers)`` once it is decoded; commit only what was handled."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, **SETTINGS})
    consumer.subscribe(topics)
    seen: set[str] = set()  # delivery is at least once: keep this in your own store in real code
    try:
        while not stop():
            message: Message | None = consumer.poll(1.0)
            if message is None:
                continue
            if message.error() is not None:
                if message.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(message.error())
            headers = {name: value.decode() for name, value in message.headers() or []}
            if headers.get("ce_id") in seen:
                consumer.commit(message=message, asynchronous=False)  # a redelivery: already handled
                continue
            version = int(headers.get("ce_schemaversion", "1"))
            if version > KNOWN_SCHEMA_VERSIONS.get(headers.get("ce_type", ""), version):
                # A newer, incompatible version of an event this consumer reads: do not guess. Stop (or park
                # the record on your own dead-letter topic) and upgrade; added optional members never get here.
                raise RuntimeError(f"{headers['ce_type']} schema version {version} is newer than this consumer")
            handle(json.loads(message.value() or b"null"), headers)  # the value is the whole CloudEvent
            seen.add(headers.get("ce_id", ""))
            consumer.commit(message=message, asynchronous=False)
    finally:
        consumer.close()


if __name__ == "__main__":
    def show(event: dict[str, Any], headers: dict[str, str]) -> None:
        print(headers["ce_time"], event["type"], event["subject"], json.dumps(event["data"], ensure_ascii=False))

    consume(sys.argv[1], sys.argv[2], sys.argv[3:], show)
