"""Consumers handle each event once, and a poison message goes to the DLT while later ones still flow,
one message at a time (``process``) and in batches (``process_many``)."""

from __future__ import annotations

import uuid
from typing import Any, NamedTuple

from aiokafka import AIOKafkaConsumer
from pymongo.errors import AutoReconnect

from kagi_shared.events import Envelope, encode, new_envelope
from kagi_shared.events import invite as ev
from kagi_shared.inbox import InboxConsumer, Message
from kagi_shared.kafka import ensure_topics, make_producer, read_topic
from kagi_shared.mongo import Store, Tx
from kagi_shared.settings import Settings


def failed_event(n: int) -> Envelope:
    return new_envelope(ev.StepUpFailed(account_id=f"acct-{n}", code_id=None, reason="wrong"),
                        source="kagi/test", subject=f"acct-{n}")


async def fetch(settings: Settings, topic: str, expected: int) -> list[Any]:
    """``expected`` records of ``topic`` read by a fresh consumer group from the start, as a worker reads them."""
    kafka = AIOKafkaConsumer(topic, bootstrap_servers=settings.kafka_bootstrap, group_id=f"g-{uuid.uuid4().hex}",
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms)
    await kafka.start()
    records: list[Any] = []
    try:
        while len(records) < expected:
            batch = await kafka.getmany(timeout_ms=15000)
            assert batch, f"only {len(records)} of {expected} messages arrived"
            records += [m for messages in batch.values() for m in messages]
    finally:
        await kafka.stop()
    return records


async def consume_all(settings: Settings, topic: str, consumer: InboxConsumer, expected: int) -> list[str]:
    """Every record through the inbox consumer one at a time, as a faust agent does."""
    return [await consumer.process(m.topic, m.key, m.value, partition=m.partition, offset=m.offset)
            for m in await fetch(settings, topic, expected)]


class Recorder:
    """A handler whose writes happen in the inbox transaction; fails the first ``flaky`` calls."""

    def __init__(self, flaky: int = 0, always_fail_for: str | None = None) -> None:
        self.flaky = flaky
        self.always_fail_for = always_fail_for

    async def __call__(self, envelope: Envelope, event: Any, tx: Tx) -> None:
        await tx.db["handled"].insert_one({"event_id": envelope.id, "account": event.account_id},
                                          session=tx.session)
        if event.account_id == self.always_fail_for:
            raise RuntimeError("cannot handle this one")
        if self.flaky > 0:
            self.flaky -= 1
            raise TimeoutError("transient")


async def dead_letters(settings: Settings) -> tuple[list[Any], Any]:
    producer = make_producer(settings, "dlt")
    await producer.start()

    async def sink(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    return [producer], sink


async def fresh_topic(settings: Settings, kind: str) -> tuple[str, list[Any], Any]:
    """A topic of this test's own with its DLT, a producer to fill it, and the sink dead letters go to."""
    topic = f"test.{kind}.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic, f"{topic}.dlt"])
    producers, sink = await dead_letters(settings)
    return topic, producers, sink


async def test_duplicated_message_is_handled_once(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("inbox")
    topic, producers, sink = await fresh_topic(settings, "inbox")
    events = [failed_event(n) for n in range(5)]
    for envelope in [*events, events[1], events[3], events[1]]:  # redelivered, as at-least-once allows
        await producers[0].send_and_wait(topic, encode(envelope), key=envelope.subject.encode())
    consumer = InboxConsumer("test", store, {ev.StepUpFailed: Recorder(flaky=2)}, sink,
                             settings_with_fast_retries(settings))

    outcomes = await consume_all(settings, topic, consumer, expected=8)
    await producers[0].stop()

    assert outcomes.count("handled") == 5
    assert outcomes.count("duplicate") == 3
    handled = await store.db["handled"].find().to_list()
    assert sorted(d["event_id"] for d in handled) == sorted(e.id for e in events)  # transient failures rolled back


class Poisoned(NamedTuple):
    """A topic holding, on one partition and in this order: a good event, bytes that are no JSON, an event of a
    type nobody registered, an event the handler always fails on (``acct-666``), a good event."""

    topic: str
    producers: list[Any]
    sink: Any
    good_before: Envelope
    always_failing: Envelope
    good_after: Envelope
    forged: bytes
    sent: int


async def poisoned_topic(settings: Settings, kind: str) -> Poisoned:
    topic, producers, sink = await fresh_topic(settings, kind)
    good_before, always_failing, good_after = failed_event(1), failed_event(666), failed_event(2)
    forged = encode(failed_event(3)).replace(b"kagi.invite.step_up_failed", b"kagi.invite.unheard_of")
    sequence = [encode(good_before), b"{not json", forged, encode(always_failing), encode(good_after)]
    for value in sequence:  # one key: everything on one partition, in this order
        await producers[0].send_and_wait(topic, value, key=b"same-key")
    return Poisoned(topic, producers, sink, good_before, always_failing, good_after, forged, len(sequence))


async def test_poison_message_goes_to_dlt_and_later_messages_flow(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("inbox")
    topic, producers, sink, good_before, always_failing, good_after, forged, sent = await poisoned_topic(
        settings, "poison")
    consumer = InboxConsumer("test", store, {ev.StepUpFailed: Recorder(always_fail_for="acct-666")}, sink,
                             settings_with_fast_retries(settings))

    outcomes = await consume_all(settings, topic, consumer, expected=sent)
    await producers[0].stop()

    assert outcomes == ["handled", "dead", "dead", "dead", "handled"]
    handled = {d["event_id"] for d in await store.db["handled"].find().to_list()}
    assert handled == {good_before.id, good_after.id}  # the failing handler's writes were rolled back
    dlt = await read_topic(settings, f"{topic}.dlt")
    assert [r.value for r in dlt] == [b"{not json", forged, encode(always_failing)]
    headers = [dict(r.headers) for r in dlt]
    assert all(h["dlt_origin_topic"] == topic.encode() for h in headers)
    assert [h["dlt_origin_offset"] for h in headers] == [b"1", b"2", b"3"]
    assert b"undecodable" in headers[0]["dlt_error"]
    assert b"unknown event type" in headers[1]["dlt_error"]
    assert b"cannot handle this one" in headers[2]["dlt_error"]


class BatchRecorder:
    """A batch handler: one ``insert_many`` per call, in the inbox transaction; fails on ``always_fail_for``."""

    def __init__(self, always_fail_for: str | None = None) -> None:
        self.always_fail_for = always_fail_for
        self.calls: list[int] = []

    async def __call__(self, events: list[tuple[Envelope, Any]], tx: Tx) -> None:
        self.calls.append(len(events))
        await tx.db["handled"].insert_many([{"event_id": e.id, "account": event.account_id} for e, event in events],
                                           session=tx.session)
        if any(event.account_id == self.always_fail_for for _, event in events):
            raise RuntimeError("cannot handle this one")


async def read_batch(settings: Settings, topic: str, expected: int) -> list[Message]:
    """Every message of ``topic`` as one batch, as a faust agent's ``take_events`` hands them over."""
    records = await fetch(settings, topic, expected)
    return sorted((Message(m.topic, m.key, m.value or b"", m.partition, m.offset) for m in records),
                  key=lambda m: m.offset)


async def test_batch_applies_each_event_once(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("inbox")
    topic, producers, sink = await fresh_topic(settings, "batch")
    events = [failed_event(n) for n in range(5)]
    for envelope in [*events[:3], events[2], *events[3:]]:  # the third redelivered within the batch
        await producers[0].send_and_wait(topic, encode(envelope), key=b"one-key")  # one partition, this order
    await producers[0].stop()
    batch_handler = BatchRecorder()
    consumer = InboxConsumer("test", store, {ev.StepUpFailed: Recorder()}, sink, settings,
                             batch_handlers={ev.StepUpFailed: batch_handler})
    messages = await read_batch(settings, topic, expected=6)
    already = messages[1]
    assert await consumer.process(already.topic, already.key, already.value) == "handled"

    outcomes = await consumer.process_many(messages)

    assert outcomes == ["handled", "duplicate", "handled", "duplicate", "handled", "handled"]
    assert batch_handler.calls == [4]  # one call, one transaction, for the four not seen before
    handled = [d["event_id"] for d in await store.db["handled"].find().to_list()]
    assert sorted(handled) == sorted(e.id for e in events)
    # The whole batch again, as after a crash before the offsets were committed: nothing applied twice.
    assert await consumer.process_many(messages) == ["duplicate"] * 6
    assert await store.db["handled"].count_documents({}) == 5


async def test_poison_event_in_a_batch_is_dead_lettered_alone(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("inbox")
    topic, producers, sink, good_before, always_failing, good_after, forged, sent = await poisoned_topic(
        settings, "batch_poison")
    consumer = InboxConsumer("test", store, {ev.StepUpFailed: Recorder(always_fail_for="acct-666")}, sink,
                             settings_with_fast_retries(settings),
                             batch_handlers={ev.StepUpFailed: BatchRecorder(always_fail_for="acct-666")})

    outcomes = await consumer.process_many(await read_batch(settings, topic, expected=sent))
    await producers[0].stop()

    assert outcomes == ["handled", "dead", "dead", "dead", "handled"]
    handled = [d["event_id"] for d in await store.db["handled"].find().to_list()]
    assert sorted(handled) == sorted([good_before.id, good_after.id])  # the failed batch left nothing behind
    dlt = await read_topic(settings, f"{topic}.dlt")
    assert [r.value for r in dlt] == [b"{not json", forged, encode(always_failing)]
    assert [dict(r.headers)["dlt_origin_offset"] for r in dlt] == [b"1", b"2", b"3"]
    assert b"cannot handle this one" in dict(dlt[2].headers)["dlt_error"]


def settings_with_fast_retries(settings: Settings) -> Settings:
    import msgspec

    return msgspec.structs.replace(settings, consumer=msgspec.structs.replace(settings.consumer,
                                                                              retry_backoff_s=0.01))


class DatabaseAway:
    """A handler whose database drops the connection for the first ``outage`` calls, as during a failover."""

    def __init__(self, outage: int) -> None:
        self.outage = outage

    async def __call__(self, envelope: Envelope, event: Any, tx: Tx) -> None:
        if self.outage > 0:
            self.outage -= 1
            raise AutoReconnect("connection closed")
        await tx.db["handled"].insert_one({"event_id": envelope.id}, session=tx.session)


async def test_a_database_outage_is_waited_out_not_dead_lettered(settings: Settings, store_factory: Any) -> None:
    """More dropped connections than the event's attempts: the event is good, so it waits and is handled once."""
    store: Store = await store_factory("inbox")
    topic, producers, sink = await fresh_topic(settings, "outage")
    fast = settings_with_fast_retries(settings)
    envelope = failed_event(7)
    await producers[0].send_and_wait(topic, encode(envelope), key=envelope.subject.encode())
    consumer = InboxConsumer("test", store, {ev.StepUpFailed: DatabaseAway(outage=fast.consumer.max_attempts + 2)},
                             sink, fast)

    assert await consume_all(settings, topic, consumer, expected=1) == ["handled"]
    await producers[0].stop()
    assert [d["event_id"] for d in await store.db["handled"].find().to_list()] == [envelope.id]
    assert await read_topic(settings, f"{topic}.dlt") == []
