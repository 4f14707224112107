"""Through the real broker: the same events twice → one mail each, across an SMTP outage; unknown types → DLT."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer
from notify_helpers import Sink, broker_producer, event, harness

from kagi_cli.mailbox import mailbox
from kagi_notify.bootstrap import consumers
from kagi_shared.events import invite as iev
from kagi_shared.events import notify as ev
from kagi_shared.settings import DEV_SECRETS, Settings
from tests.support import read_from_now_on

TOPICS = ["notify.requests", "lifecycle.events", "invite.events", "permissions.events"]


def request(recipient: str) -> bytes:
    return event(ev.sealed_request(DEV_SECRETS["notify_key"], ev.Notice(
        template="step_up_code", channel="mail", recipient=recipient, category="security",
        variables={"code": "ABCD2345EFGH", "expires_at": "2026年11月22日 12時00分まで"})), subject=recipient)


def unknown_lifecycle_event() -> bytes:
    """A newer lifecycle event this notify has never heard of."""
    envelope = msgspec.json.decode(event(iev.StepUpFailed(account_id="a", code_id=None, reason="x"), "a"))
    envelope["type"] = envelope["data"]["type"] = "kagi.lifecycle.account_renamed"
    return msgspec.json.encode(envelope)




async def test_replayed_events_through_the_broker_mail_once_even_across_an_smtp_outage(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    producer, dead_letter = await broker_producer(settings)

    sink = Sink(tmp_path)  # down for now
    h = await harness(settings, await store_factory("notify"), sink.port, tmp_path, dead_letter)
    assert sorted(h.consumers) == sorted(TOPICS) == sorted(consumers(h.notify, dead_letter, h.settings))

    kafka = AIOKafkaConsumer(*TOPICS, "lifecycle.events.dlt", bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"notify-test-{uuid.uuid4().hex}", auto_offset_reset="latest",
                             enable_auto_commit=False, fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms)
    await kafka.start()
    try:
        await read_from_now_on(kafka)

        recipients = [f"broker{i}-{uuid.uuid4().hex[:6]}@example.jp" for i in range(5)]
        requests = [request(r) for r in recipients]
        unknown = unknown_lifecycle_event()
        unhandled = event(iev.StepUpFailed(account_id="a", code_id=None, reason="x"), "a")
        for value in requests + requests:  # every request published twice
            await producer.send_and_wait("notify.requests", value, key=b"k")
        await producer.send_and_wait("lifecycle.events", unknown, key=b"a")
        await producer.send_and_wait("invite.events", unhandled, key=b"a")

        outcomes: dict[bytes, list[str]] = {}
        seen_dlt: list[Any] = []

        async def consume_until(done: Any) -> None:
            for _ in range(300):
                batch = await kafka.getmany(timeout_ms=200)
                for messages in batch.values():
                    for m in messages:
                        if m.topic.endswith(".dlt"):
                            seen_dlt.append(m)
                            continue
                        outcome = await h.consumers[m.topic].process(m.topic, m.key, m.value,
                                                                     partition=m.partition, offset=m.offset)
                        outcomes.setdefault(m.value, []).append(outcome)
                if done():
                    return
            raise AssertionError("events did not arrive")

        await consume_until(lambda: all(len(outcomes.get(v, [])) == 2 for v in requests)
                            and unknown in outcomes and unhandled in outcomes
                            and any(m.value == unknown for m in seen_dlt))

        assert all(sorted(outcomes[v]) == ["duplicate", "handled"] for v in requests)
        assert outcomes[unhandled] == ["ignored"]  # a known type notify has no use for
        assert outcomes[unknown] == ["dead"]  # an unknown type: counted and dead-lettered, the partition moves on
        assert h.consumers["lifecycle.events"].counts["dead"] >= 1
        [dlt] = [m for m in seen_dlt if m.value == unknown]
        headers = dict(dlt.headers)
        assert headers["dlt_origin_topic"] == b"lifecycle.events"
        assert b"account_renamed" in headers["dlt_error"]

        # SMTP is down: every delivery waits, spending no attempt; then it comes back.
        await h.notify.service.dispatch_due()
        mine = [d for d in await h.deliveries() if d["recipient"] in recipients]
        assert len(mine) == 5 and {(d["status"], d["attempts"]) for d in mine} == {("queued", 0)}
        sink.up()
        try:
            await h.drain(10)
            # The same events arrive a third time after the mails went out: still nothing new.
            for value in requests:
                await producer.send_and_wait("notify.requests", value, key=b"k")
            await consume_until(lambda: all(len(outcomes[v]) == 3 for v in requests))
            await h.drain(5)
        finally:
            sink.down()
        assert all(outcomes[v][-1] == "duplicate" for v in requests)
        assert sorted(m.to for m in mailbox(sink.dir) if m.to in recipients) == sorted(recipients)
        mine = [d for d in await h.deliveries() if d["recipient"] in recipients]
        assert {(d["status"], d["attempts"]) for d in mine} == {("sent", 1)}
    finally:
        await kafka.stop()
        await producer.stop()


def newer_request(recipient: str) -> bytes:
    """A request from a producer already on the next schema version of the event."""
    envelope = msgspec.json.decode(request(recipient))
    envelope["schemaversion"] = 2
    envelope["data"]["priority"] = "high"
    return msgspec.json.encode(envelope)


async def test_a_newer_schema_version_goes_to_the_dlt_and_later_events_still_flow(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    producer, dead_letter = await broker_producer(settings)

    sink = Sink(tmp_path)
    sink.up()
    h = await harness(settings, await store_factory("notify"), sink.port, tmp_path, dead_letter)
    kafka = AIOKafkaConsumer("notify.requests", "notify.requests.dlt", bootstrap_servers=settings.kafka_bootstrap,
                             group_id=f"notify-test-{uuid.uuid4().hex}", auto_offset_reset="latest",
                             enable_auto_commit=False, fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms)
    await kafka.start()
    try:
        await read_from_now_on(kafka)

        tag = uuid.uuid4().hex[:8]
        newer, later = newer_request(f"newer-{tag}@example.jp"), request(f"later-{tag}@example.jp")
        for value in (newer, later):  # one key: one partition, in this order
            await producer.send_and_wait("notify.requests", value, key=tag.encode())

        outcomes: dict[bytes, list[str]] = {}
        dlt: list[Any] = []
        for _ in range(300):
            for messages in (await kafka.getmany(timeout_ms=200)).values():
                for m in messages:
                    if m.topic.endswith(".dlt"):
                        dlt += [m] if m.value == newer else []
                        continue
                    if m.key != tag.encode():
                        continue  # another test's request on the shared topic, not this one's to mail
                    outcomes.setdefault(m.value, []).append(
                        await h.consumers[m.topic].process(m.topic, m.key, m.value, partition=m.partition,
                                                           offset=m.offset))
            if later in outcomes and dlt:
                break
        assert (outcomes.get(newer), outcomes.get(later)) == (["dead"], ["handled"])
        assert h.consumers["notify.requests"].counts["dead"] == 1
        [dead] = dlt
        headers = dict(dead.headers)
        assert headers["dlt_origin_topic"] == b"notify.requests"
        assert b"schema version 2 is newer than 1" in headers["dlt_error"]

        await h.drain(5)  # the request behind it is mailed; the newer one made no delivery
        assert [d["recipient"] for d in await h.deliveries()] == [f"later-{tag}@example.jp"]
        assert [m.to for m in mailbox(sink.dir)] == [f"later-{tag}@example.jp"]
    finally:
        sink.down()
        await kafka.stop()
        await producer.stop()
