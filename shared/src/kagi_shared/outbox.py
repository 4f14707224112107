"""The outbox relay: publishes committed outbox rows to Kafka exactly once per row.

Rows are written by ``Store.transaction`` together with the state they describe.
The relay takes a lease (one relay per service database), reads a batch in commit
order, records a *claim* (the end offsets of the partitions it is about to write),
sends the batch, deletes the published rows and then the claim.

A relay killed after sending but before deleting would resend on restart. The claim
closes that window without an idempotent producer (which the embedded broker lacks):
a relay that takes over first reads every claimed partition from the recorded offset
to its end and drops the rows whose event id (header ``ce_id``) it finds there. Only
rows that really did not reach the broker are sent again.

Published rows are deleted rather than marked: on the embedded database a batch of
point deletes costs a fraction of an ``update_many`` over ``$in`` (measured: 0.5 s vs
2.5 s per 1,000 rows), and the topic itself is the record of what was published.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import DeleteOne, ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from kagi_shared.events.envelope import decode_envelope, kafka_headers
from kagi_shared.kafka import make_consumer
from kagi_shared.logging import get_logger
from kagi_shared.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from kagi_shared.mongo import OUTBOX, InsertWatch, Store
from kagi_shared.settings import Settings

log = get_logger(__name__)
LEASES = "outbox_lease"
CLAIMS = "outbox_claims"


def record_headers(row: dict[str, Any]) -> list[tuple[str, bytes]]:
    """The CloudEvents headers of the row's envelope (``kafka_headers``, the one place they are made)."""
    return kafka_headers(decode_envelope(bytes(row["value"])))


class OutboxRelay:
    def __init__(
        self,
        store: Store,
        producer: AIOKafkaProducer,
        settings: Settings,
        *,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.producer = producer
        self.settings = settings
        self.owner = owner or f"relay-{uuid.uuid4()}"
        self.outbox = store.db[OUTBOX]
        self.leases = store.db[LEASES]
        self.claims = store.db[CLAIMS]
        self._lease_until = 0.0
        self._partitions: dict[str, list[int]] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._wake = asyncio.Event()
        self._backlog_at = 0.0
        self.published = 0
        self._backoff = 0.0
        self._polled_at = 0.0
        self._watch = InsertWatch(self.outbox, self._wake, settings.outbox.watch_await_s)

    # -- lease ---------------------------------------------------------------------------------
    async def hold_lease(self) -> bool:
        """True while this relay owns the lease; renews it when half of it is spent."""
        ttl = self.settings.outbox.lease_ttl_s
        now_mono = time.monotonic()
        if now_mono < self._lease_until - ttl / 2:
            return True
        now = datetime.now(UTC)
        try:
            doc = await self.leases.find_one_and_update(
                {"_id": "relay", "$or": [{"owner": self.owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires_at": now + timedelta(seconds=ttl)}},
                upsert=True,
                return_document=ReturnDocument.BEFORE,
            )
        except DuplicateKeyError:
            self._lease_until = 0.0
            return False
        newly_acquired = doc is None or doc.get("owner") != self.owner
        self._lease_until = now_mono + ttl
        if newly_acquired:
            log.info("outbox.lease_acquired", owner=self.owner)
            await self.reconcile()
        return True

    async def release_lease(self) -> None:
        await self.leases.delete_one({"_id": "relay", "owner": self.owner})
        self._lease_until = 0.0

    # -- publishing ----------------------------------------------------------------------------
    async def _end_offsets(self, topics: set[str]) -> dict[str, int]:
        consumer = await self._offsets_consumer()
        partitions: list[TopicPartition] = []
        for topic in topics:
            if topic not in self._partitions:
                self._partitions[topic] = sorted(await self.producer.partitions_for(topic))
            partitions += [TopicPartition(topic, p) for p in self._partitions[topic]]
        ends = await consumer.end_offsets(partitions)
        return {f"{tp.topic}:{tp.partition}": off for tp, off in ends.items()}

    async def run_once(self) -> int:
        """Publish one batch of pending rows; returns how many were published."""
        if await self.claims.count_documents({}, limit=1):
            # A claim we did not finish (a send failed): settle it before sending anything again.
            await self.reconcile()
        rows = (
            await self.outbox.find({}, {"created_at": 0})
            .sort([("seq", 1)])
            .limit(self.settings.outbox.batch_size)
            .to_list()
        )
        if not rows:
            return 0
        claim_id = str(uuid.uuid4())
        offsets = await self._end_offsets({r["topic"] for r in rows})
        await self.claims.insert_one({"_id": claim_id, "offsets": offsets, "owner": self.owner,
                                      "at": datetime.now(UTC), "size": len(rows)})
        futures = [
            await self.producer.send(
                r["topic"],
                bytes(r["value"]),
                key=r["key"].encode(),
                headers=record_headers(r),
            )
            for r in rows
        ]
        await asyncio.gather(*futures)
        await self._forget([r["_id"] for r in rows])
        await self.claims.delete_one({"_id": claim_id})
        self.published += len(rows)
        OUTBOX_PUBLISHED.labels(self.store.db.name).inc(len(rows))
        return len(rows)

    async def _forget(self, ids: list[str]) -> None:
        """Published rows leave the outbox (the topic is the record); point deletes beat ``$in`` here."""
        if ids:
            await self.outbox.bulk_write([DeleteOne({"_id": i}) for i in ids], ordered=False)

    # -- recovery ------------------------------------------------------------------------------
    async def _offsets_consumer(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            consumer = make_consumer(self.settings, enable_auto_commit=False, group_id=None,
                                     client_id=f"{self.owner}-offsets")
            try:
                await consumer.start()
            except Exception:
                # Kept only once started: an unstarted reader kept here would fail every later batch for good.
                await consumer.stop()
                raise
            self._consumer = consumer
        return self._consumer

    async def reconcile(self) -> int:
        """Settle open claims: rows whose event already reached the topic leave the outbox; the rest stay."""
        claims = await self.claims.find().to_list()
        if not claims:
            return 0
        start: dict[TopicPartition, int] = {}
        for claim in claims:
            for tp_key, offset in claim["offsets"].items():
                topic, partition = tp_key.rsplit(":", 1)
                tp = TopicPartition(topic, int(partition))
                start[tp] = min(offset, start.get(tp, offset))
        on_topic = await self._ids_on_topics(start)
        pending = {r["_id"] for r in await self.outbox.find({"_id": {"$in": list(on_topic)}}, {"_id": 1}).to_list()} \
            if on_topic else set()
        await self._forget(list(pending))
        await self.claims.delete_many({"_id": {"$in": [c["_id"] for c in claims]}})
        log.info("outbox.reconciled", claims=len(claims), already_published=len(pending))
        return len(pending)

    async def _ids_on_topics(self, start: dict[TopicPartition, int]) -> set[str]:
        consumer = await self._offsets_consumer()
        ends = await consumer.end_offsets(list(start))
        todo = {tp: off for tp, off in start.items() if ends[tp] > off}
        found: set[str] = set()
        if not todo:
            return found
        consumer.assign(list(todo))
        for tp, off in todo.items():
            consumer.seek(tp, off)
        while todo:
            batch = await consumer.getmany(*todo, timeout_ms=1000)
            for tp, messages in batch.items():
                for msg in messages:
                    event_id = dict(msg.headers).get("ce_id", b"").decode()
                    if event_id:
                        found.add(event_id)
                    if msg.offset + 1 >= ends[tp]:
                        todo.pop(tp, None)
        consumer.assign([])
        return found

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    # -- loop ----------------------------------------------------------------------------------
    async def _watch_inserts(self) -> None:
        """Wake the loop on every outbox insert; polling remains the fallback."""
        await self._watch.run()

    @property
    def stream_live(self) -> bool:
        """True while the change stream on the outbox is open: every insert then wakes the loop."""
        return self._watch.live

    async def _measure_backlog(self) -> None:
        """Published rows are deleted, so the outbox's size is the backlog; sampled every few seconds."""
        now = time.monotonic()
        if now - self._backlog_at >= 5:
            self._backlog_at = now
            OUTBOX_BACKLOG.labels(self.store.db.name).set(await self.outbox.estimated_document_count())

    def idle_wait(self) -> float:
        """How long to sleep after a pass that found nothing, unless an insert wakes the loop first.

        With the change stream open every commit wakes the relay at once, so the loop sleeps until the lease is
        due for renewal. Without it the poll is what finds new rows: it starts at ``poll_interval_s`` and doubles
        while nothing comes, up to ``idle_poll_max_s``.
        """
        outbox = self.settings.outbox
        renew_in = max(self._lease_until - outbox.lease_ttl_s / 2 - time.monotonic(), outbox.poll_interval_s)
        if self.stream_live:
            return renew_in
        self._backoff = min(max(self._backoff * 2, outbox.poll_interval_s), outbox.idle_poll_max_s)
        return min(self._backoff, renew_in)

    def _may_skip_poll(self, woken: bool, more: bool) -> bool:
        """A pass only renewing the lease: nothing was committed (the open stream would have said so), the last
        pass emptied the outbox, and the safety poll (for an insert the stream might have missed) is not due."""
        return (self.stream_live and not woken and not more
                and time.monotonic() - self._polled_at < self.settings.outbox.safety_poll_s)

    async def run(self, stop: asyncio.Event) -> None:
        watcher = asyncio.create_task(self._watch_inserts())
        more = True
        try:
            while not stop.is_set():
                try:
                    if not await self.hold_lease():
                        await _wait(stop, self.settings.outbox.lease_ttl_s / 3)
                        continue
                    woken = self._wake.is_set()
                    self._wake.clear()
                    if self._may_skip_poll(woken, more):
                        await _wait_any(stop, self._wake, self.idle_wait())
                        continue
                    await self._measure_backlog()
                    self._polled_at = time.monotonic()
                    more = await self.run_once() > 0
                    if more:
                        self._backoff = 0.0
                    else:
                        await _wait_any(stop, self._wake, self.idle_wait())
                except (TimeoutError, PyMongoError, OSError) as exc:
                    more = True
                    log.warning("outbox.relay_error", error=str(exc))
                    await _wait(stop, 1.0)
                except Exception as exc:  # a broker error: back off, the claim makes retries safe
                    more = True
                    log.warning("outbox.relay_error", error=repr(exc))
                    await _wait(stop, 1.0)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
            await self.close()


async def _wait(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event, seconds: float) -> None:
    tasks = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


__all__ = ["OutboxRelay"]
