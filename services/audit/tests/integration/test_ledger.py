"""The ledger against the real database: one entry per event id, and tampering is detected."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from kagi_audit.adapters.checkpoints import CheckpointReader
from kagi_audit.bootstrap import bootstrap
from kagi_audit.domain.chain import Checkpoint
from kagi_shared.events import decode, encode, new_envelope
from kagi_shared.events.audit import AuditCheckpoint, AuditRecorded
from kagi_shared.inbox import InboxConsumer
from kagi_shared.kafka import ensure_topics, make_producer
from kagi_shared.mongo import OUTBOX, Store
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_CHECKPOINTS


def recorded(n: int) -> bytes:
    return encode(new_envelope(AuditRecorded(
        actor_id="op-1", actor_login_id="operator@example.jp", roles=["operator"], action="POST /api/v1/x",
        target=f"/api/v1/x/{n}", status=200, outcome="success", ip="127.0.0.1", request_id=f"r{n}",
        at=datetime.now(UTC)), source="kagi/gateway", subject="op-1"))


async def test_replayed_events_are_chained_once_and_tampering_is_detected(settings: Settings,
                                                                         store_factory: Any) -> None:
    store = await store_factory("audit")
    audit = bootstrap(settings, store)
    audit.service.checkpoints = lambda: checkpoints_in_outbox(store)  # this test's own ledger, not the topic's
    await audit.start()

    async def dead(*_: Any) -> None:
        raise AssertionError("nothing should be dead-lettered")

    consumer = InboxConsumer("audit", store, {AuditRecorded: audit.service.on_recorded}, dead, settings)
    events = [recorded(i) for i in range(6)]
    outcomes = [await consumer.process("audit.events", b"op-1", e) for e in [*events, events[2], events[4]]]
    assert outcomes.count("handled") == 6 and outcomes.count("duplicate") == 2

    verdict = await audit.service.verify()
    assert verdict.ok and verdict.entries == 6
    assert [e["target"] for e in [link.entry for link in await audit.ledger.recent(limit=10)]] == \
        [f"/api/v1/x/{i}" for i in reversed(range(6))]

    await store.db["ledger"].update_one({"_id": 4}, {"$set": {"entry.outcome": "refused"}})
    broken = await audit.service.verify()
    assert not broken.ok and broken.broken_at == 4

    await store.db["ledger"].update_one({"_id": 4}, {"$set": {"entry.outcome": "success"}})
    await store.db["ledger"].delete_one({"_id": 3})
    assert (await audit.service.verify()).broken_at == 3


async def checkpoints_in_outbox(store: Store) -> list[Checkpoint]:
    """The checkpoints the service handed to its outbox, oldest first (what the relay publishes on
    audit.checkpoints; no relay runs here, so they stay)."""
    out = []
    for row in await store.db[OUTBOX].find({"topic": "audit.checkpoints"}).sort([("seq", 1)]).to_list():
        _, event = decode(bytes(row["value"]))
        assert isinstance(event, AuditCheckpoint)
        out.append(Checkpoint(entries=event.entries, head_hash=event.head_hash, at=event.at,
                              signature=event.signature))
    return out


async def checkpointed_audit(settings: Settings, store_factory: Any) -> tuple[Any, Any, InboxConsumer]:
    """Audit on its own database whose checkpoints are read from its outbox; its consumer dead-letters nothing."""
    store = await store_factory("audit")
    audit = bootstrap(settings, store)
    audit.service.checkpoints = lambda: checkpoints_in_outbox(store)
    await audit.start()

    async def dead(*_: Any) -> None:
        raise AssertionError("nothing should be dead-lettered")

    return store, audit, InboxConsumer("audit", store, {AuditRecorded: audit.service.on_recorded}, dead, settings)


async def test_a_removed_tail_and_a_rewrite_without_the_key_are_found(settings: Settings, store_factory: Any) -> None:
    """Issue 15, finding 8: the chain is keyed (a database writer cannot recompute it) and checked against the
    latest signed checkpoint (removing the newest entries leaves a chain consistent in itself)."""
    from kagi_audit.domain.chain import next_link

    store, audit, consumer = await checkpointed_audit(settings, store_factory)
    for i in range(5):
        await consumer.process("audit.events", b"op-1", recorded(100 + i))
    assert (await audit.service.verify()).ok
    assert await store.db[OUTBOX].count_documents({"topic": "audit.checkpoints"}) == 5

    await store.db["ledger"].delete_many({"_id": {"$gte": 4}})
    truncated = await audit.service.verify()
    assert not truncated.ok and truncated.broken_at == 4 and truncated.checkpoint_entries == 5

    # Put the tail back rewritten with an unkeyed SHA-256 chain, as the old verifier would have accepted.
    links = [link async for link in audit.ledger.all()]
    for i in (3, 4):
        forged = next_link(b"not-the-key", links[-1], {**links[-1].entry, "target": f"/forged/{i}"})
        forged = msgspec.structs.replace(forged, seq=links[-1].seq + 1)
        await store.db["ledger"].insert_one({"_id": forged.seq, "prev_hash": forged.prev_hash, "hash": forged.hash,
                                             "entry": forged.entry})
        links.append(forged)
    rewritten = await audit.service.verify()
    assert not rewritten.ok and rewritten.broken_at == 4 and rewritten.reason == "entry was altered"


async def test_a_tail_cut_off_and_written_again_is_found_against_every_checkpoint(settings: Settings,
                                                                                 store_factory: Any) -> None:
    """Issue 15, finding 8: remove the newest entries and let new events take their places: the chain is whole
    again and its head matches the latest checkpoint of the same length. Only the history of checkpoints shows
    it: the checkpoints published for those counts named other heads."""
    store, audit, consumer = await checkpointed_audit(settings, store_factory)
    for i in range(5):
        await consumer.process("audit.events", b"op-1", recorded(200 + i))
    assert (await audit.service.verify()).ok

    await store.db["ledger"].delete_many({"_id": {"$gte": 4}})  # entries 4 and 5 gone ...
    for i in range(2):  # ... and the next two events are chained in their places by the worker itself
        await consumer.process("audit.events", b"op-1", recorded(300 + i))
    assert await store.db["ledger"].count_documents({}) == 5
    rewritten = await audit.service.verify()
    assert not rewritten.ok and rewritten.broken_at == 4, rewritten


async def test_chaining_an_entry_reads_the_head_not_the_whole_ledger(settings: Settings, store_factory: Any) -> None:
    """Each event needs the newest entry: point reads of the head pointer, never a sorted read of the ledger
    (that grows with it: on the embedded database it left the consumer a minute behind a drill)."""
    import uuid

    from pymongo import AsyncMongoClient, monitoring

    sorted_reads: list[dict[str, Any]] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command_name == "find" and event.command.get("find") == "ledger" and event.command.get("sort"):
                sorted_reads.append(dict(event.command))

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, event_listeners=[Listener()])
    store = Store(client, f"test_audit_{uuid.uuid4().hex[:8]}")
    try:
        audit = bootstrap(settings, store)
        audit.service.checkpoints = lambda: checkpoints_in_outbox(store)
        await audit.start()

        async def dead(*_: Any) -> None:
            raise AssertionError("nothing should be dead-lettered")

        consumer = InboxConsumer("audit", store, {AuditRecorded: audit.service.on_recorded}, dead, settings)
        assert await consumer.process("audit.events", b"op-1", recorded(1)) == "handled"
        sorted_reads.clear()  # the first entry finds no head yet
        for i in range(2, 8):
            assert await consumer.process("audit.events", b"op-1", recorded(i)) == "handled"
        assert sorted_reads == []
        assert await store.db["ledger_head"].find_one({"_id": "head"}) == {"_id": "head", "seq": 7}
        assert (await audit.service.verify()).ok
    finally:
        await client.drop_database(store.db.name)
        await client.close()


async def test_the_checkpoint_history_holds_every_checkpoint_of_a_batch_published_together(settings: Settings) -> None:
    """The relay publishes the checkpoints of many appends in one record batch. The newest of them are what shows a
    tail cut off a moment ago, so the verifier's history must hold them all (the embedded broker reports a
    partition's end short of such a batch). On a topic of the test's own: the session's audit worker verifies
    ``audit.checkpoints`` against its ledger, which these made-up checkpoints would break."""
    run = uuid.uuid4().hex
    topic = f"{AUDIT_CHECKPOINTS.name}.test-{run[:8]}"
    await ensure_topics(settings, [topic])
    marks = [AuditCheckpoint(entries=i + 1, head_hash=f"{run}-{i}", at=datetime.now(UTC), signature="0" * 64)
             for i in range(5)]
    producer = make_producer(settings, "test-audit-checkpoints")
    await producer.start()
    try:
        # Handed over together, before the producer's sender runs: one batch on the partition.
        sent = [await producer.send(topic, encode(new_envelope(m, source="kagi/audit", subject="ledger")),
                                    partition=0) for m in marks]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()
    history = await CheckpointReader(settings, timeout_s=10, topic=topic).history()
    assert [c.head_hash for c in history] == [m.head_hash for m in marks]
