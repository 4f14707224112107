"""docs/consuming-events.md stays true: its confluent-kafka example joins a consumer group on the embedded broker
with the settings it recommends, reads what Kagi writes and hands over decoded events with their headers; the guide
names every topic of the catalogue."""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import re
import threading
import time
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

from kagi_shared.events import new_envelope
from kagi_shared.events.notify import NotificationDelivered
from kagi_shared.kafka import ensure_topics, make_producer, publish
from kagi_shared.settings import Settings
from kagi_shared.topics import CATALOGUE, NOTIFY_DELIVERIES

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "consuming-events.md"
EXAMPLE = REPO / "docs" / "examples" / "consume_confluent.py"


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("consume_confluent", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_guide_names_every_topic_and_the_example_settings() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    assert [t.name for t in CATALOGUE if f"`{t.name}`" not in text] == []
    assert "docs/examples/consume_confluent.py" in text
    settings = example().SETTINGS
    assert settings["max.poll.interval.ms"] <= 10_000
    assert settings["session.timeout.ms"] <= settings["max.poll.interval.ms"]
    # The snippet in the guide shows the example's settings, value for value.
    snippet = text.split("### confluent-kafka", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    shown = {m["name"]: ast.literal_eval(m["value"])
             for m in re.finditer(r'^\s*"(?P<name>[a-z.]+)": (?P<value>[^,]+),', snippet, re.MULTILINE)}
    assert {name: shown.get(name) for name in settings} == settings


async def test_the_confluent_example_joins_a_group_and_reads_kagi_records(settings: Settings) -> None:
    await ensure_topics(settings)
    mine = [NotificationDelivered(delivery_id=str(uuid.uuid4()), template="guide.example", channel="email",
                                  recipient="guide@example.jp", attempts=1) for _ in range(3)]
    envelopes = [new_envelope(event, source="tests/guide", subject=event.delivery_id) for event in mine]
    wanted = {e.id for e in envelopes}
    got: dict[str, tuple[dict[str, Any], dict[str, str]]] = {}
    failure: list[BaseException] = []

    def handle(event: dict[str, Any], headers: dict[str, str]) -> None:
        if event["id"] in wanted:
            got[event["id"]] = (event, headers)

    def run() -> None:
        try:
            example().consume(settings.kafka_bootstrap, f"guide-{uuid.uuid4()}", [NOTIFY_DELIVERIES.name], handle,
                              stop=lambda: len(got) == len(wanted) or time.monotonic() > deadline)
        except BaseException as exc:  # reported below, in the test's thread
            failure.append(exc)

    started = time.monotonic()
    deadline = started + 60
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    producer = make_producer(settings, "guide-test")
    await producer.start()
    try:
        for envelope in envelopes:
            await publish(producer, NOTIFY_DELIVERIES.name, envelope)
    finally:
        await producer.stop()
    await asyncio.to_thread(thread.join, 90)
    assert failure == []
    assert set(got) == wanted, f"read {len(got)} of {len(wanted)} in {time.monotonic() - started:.1f}s"
    # With the guide's settings the group joins in seconds (the default max.poll.interval.ms waits minutes).
    assert time.monotonic() - started < 30
    for envelope in envelopes:
        event, headers = got[envelope.id]
        assert event["data"]["template"] == "guide.example"
        assert headers["ce_id"] == envelope.id and headers["ce_type"] == "kagi.notify.notification_delivered"
        assert headers["content-type"].startswith("application/cloudevents+json")
