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

Two ways to find committed rows, chosen when the relay starts:

* **Tailing the change stream** (MongoDB replica sets, the embedded database): the insert events carry the rows
  in commit order, so publishing needs no query. Each batch's claim also records its row ids and the resume token
  after its last event, and is marked ``sent`` once the broker acknowledged it: the newest sent claim's token is
  the checkpoint a restarted relay resumes from, so a confirmed range is never read again. Published rows are
  deleted later, in bulk, once the stream is quiet and at most every ``cleanup_every_s`` (or every
  ``cleanup_rows``); until then they stay in the outbox but before the checkpoint. A claim left open by a crash is
  settled against the topics when the relay resumes: the ids found there are kept (``partial``) and skipped when
  the stream delivers them again. Without a usable checkpoint (first start, history pruned, the relay polled
  meanwhile) the relay opens a new stream, reads the ids
  the outbox holds (the backlog), publishes those rows by polling, then follows the stream, skipping its events for
  backlog rows up to the first row that was not: that one was committed after the backlog was read, and so was
  every later one. A relay killed during the backlog starts afresh (its claims are settled as when polling).
* **Polling** (a database without change streams, or ``change_stream`` off): read a batch in ``seq`` order, claim,
  send, delete, as above; an insert watch wakes it where one exists. Entering it deletes what the tailing relay
  published and forgets the checkpoint, so a later tail starts afresh instead of resuming over rows it did not see.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pymongo import DeleteOne, ReturnDocument
from pymongo.errors import DuplicateKeyError, OperationFailure, PyMongoError

from kagi_shared.events.envelope import decode_envelope, kafka_headers
from kagi_shared.kafka import make_consumer
from kagi_shared.logging import get_logger
from kagi_shared.metrics import OUTBOX_BACKLOG, OUTBOX_PUBLISHED
from kagi_shared.mongo import OUTBOX, InsertWatch, Store
from kagi_shared.settings import Settings

if TYPE_CHECKING:
    from pymongo.asynchronous.change_stream import AsyncChangeStream

log = get_logger(__name__)
LEASES = "outbox_lease"
CLAIMS = "outbox_claims"
CHECKPOINTS = "outbox_checkpoint"
INSERTS: list[dict[str, Any]] = [{"$match": {"operationType": "insert"}}]
UNSENT = {"state": {"$nin": ["sent", "partial"]}}
"""Claims whose batch may not have reached the broker: a polling relay's (no state) and a tailing relay's open ones."""
Change = Mapping[str, Any]
UNRESUMABLE = {260, 280, 286}
"""InvalidResumeToken, ChangeStreamFatalError, ChangeStreamHistoryLost: resuming from the checkpoint cannot work."""


class LeaseLost(Exception):
    """Another relay holds the lease now: stop what this one was doing and wait for it."""


class StreamEnded(Exception):
    """The change stream closed (invalidated, or its reader failed): choose the mode again."""


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
        self.checkpoints = store.db[CHECKPOINTS]
        self.mode = "starting"
        """``stream`` while tailing the change stream, ``poll`` while polling."""
        self._fresh_lease = False
        self._stream_retry_at = 0.0
        self._n = 0
        self._skip: set[str] = set()
        self._catching_up = False
        self._uncleaned = 0
        self._cleaned_at = 0.0
        self._force_fresh = False
        self._unsettled = True
        """Claims may be open: another relay's (until this one has looked, after taking the lease) or this one's
        (a batch that failed between its claim and its end). Only the lease holder writes claims, so otherwise
        there are none, and ``run_once`` need not look for them on every pass."""
        self._inflight: collections.deque[tuple[str, asyncio.Future[list[Any]], int]] = collections.deque()

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
            # Another relay may have left claims: each mode settles them before it sends (``run_once`` before
            # every batch, the tail when it opens), and a tail interrupted by a lapsed lease starts over.
            log.info("outbox.lease_acquired", owner=self.owner)
            self._fresh_lease = True
            self._unsettled = True
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

    async def run_once(self, only: list[str] | None = None) -> int:
        """Publish one batch of pending rows (of the ``only`` ones if given); returns how many were published."""
        if self._unsettled:
            # A claim another relay or a failed batch of this one left: settle it before sending anything again.
            await self.reconcile()
        rows = (
            await self.outbox.find({} if only is None else {"_id": {"$in": only}}, {"created_at": 0})
            .sort([("seq", 1)])
            .limit(self.settings.outbox.batch_size)
            .to_list()
        )
        if not rows:
            return 0
        claim_id = str(uuid.uuid4())
        offsets = await self._end_offsets({r["topic"] for r in rows})
        self._unsettled = True  # until the claim is gone, however this batch ends (a failure, a cancellation)
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
        self._unsettled = False
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
        claims = await self.claims.find(UNSENT).to_list()
        if not claims:
            self._unsettled = False
            return 0
        on_topic = await self._ids_on_topics(_claimed_offsets(claims))
        pending = {r["_id"] for r in await self.outbox.find({"_id": {"$in": list(on_topic)}}, {"_id": 1}).to_list()} \
            if on_topic else set()
        await self._forget(list(pending))
        await self.claims.delete_many({"_id": {"$in": [c["_id"] for c in claims]}})
        self._unsettled = False
        log.info("outbox.reconciled", claims=len(claims), already_published=len(pending))
        return len(pending)

    async def _settle_open_claims(self) -> None:
        """Before resuming a tail: keep, in each open claim, the ids that reached the topics (``partial``); the
        stream delivers those rows again after the checkpoint, and they are skipped (``_skip``)."""
        claims = await self.claims.find(UNSENT).to_list()
        if claims:
            on_topic = await self._ids_on_topics(_claimed_offsets(claims))
            for claim in claims:
                if "ids" not in claim:  # a polling relay's claim: its published rows leave now, as when polling
                    here = await self.outbox.find({"_id": {"$in": list(on_topic)}}, {"_id": 1}).to_list()
                    await self._forget([r["_id"] for r in here])
                    await self.claims.delete_one({"_id": claim["_id"]})
                    continue
                published = [i for i in claim["ids"] if i in on_topic]
                await self.claims.update_one({"_id": claim["_id"]},
                                             {"$set": {"state": "partial", "published": published}})
            log.info("outbox.reconciled", claims=len(claims), already_published=len(on_topic))
        partial = await self.claims.find({"state": "partial"}, {"published": 1}).to_list()
        self._skip = {i for claim in partial for i in claim["published"]}

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
        """True while the relay follows the outbox's change stream: tailing it, or woken by it while polling."""
        return self.mode == "stream" or self._watch.live

    async def _measure_backlog(self, every_s: float = 5.0) -> None:
        """Published rows are deleted, so the outbox's size is the backlog; sampled every few seconds."""
        now = time.monotonic()
        if now - self._backlog_at >= every_s:
            self._backlog_at = now
            # Rows a tail published stay until the quiet moment that deletes them: they are not backlog.
            count = await self.outbox.estimated_document_count()
            OUTBOX_BACKLOG.labels(self.store.db.name).set(max(count - self._uncleaned, 0))

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
        try:
            while not stop.is_set():
                try:
                    if not await self.hold_lease():
                        await _wait(stop, self.settings.outbox.lease_ttl_s / 3)
                        continue
                    if self._stream_wanted():
                        stream = await self._open_stream()
                        if stream is not None:
                            await self._tail(stream, stop)
                            continue
                        self._stream_retry_at = time.monotonic() + self.settings.outbox.stream_retry_s
                    await self._poll(stop)
                except (LeaseLost, StreamEnded) as exc:
                    log.info("outbox.relay_restart", reason=type(exc).__name__)
                    await _wait(stop, 0.1)
                except (TimeoutError, PyMongoError, OSError) as exc:
                    log.warning("outbox.relay_error", error=str(exc))
                    await _wait(stop, 1.0)
                except Exception as exc:  # a broker error: back off, the claim makes retries safe
                    log.warning("outbox.relay_error", error=repr(exc))
                    await _wait(stop, 1.0)
        finally:
            await self.close()

    def _stream_wanted(self) -> bool:
        return self.settings.outbox.change_stream and time.monotonic() >= self._stream_retry_at

    # -- tailing the change stream ---------------------------------------------------------------
    async def _checkpoint(self) -> tuple[Mapping[str, Any] | None, int]:
        """(resume token, claim number) of the newest confirmed batch; the highest claim number in use."""
        newest = await self.claims.find({"state": "sent"}).sort([("n", -1)]).limit(1).to_list()
        doc = newest[0] if newest else await self.checkpoints.find_one({"_id": "relay"})
        last = await self.claims.find({"n": {"$exists": True}}, {"n": 1}).sort([("n", -1)]).limit(1).to_list()
        n = max([0, *([int(doc["n"])] if doc else []), *(int(c["n"]) for c in last)])
        return (doc["token"] if doc else None), n

    async def _open_stream(self) -> AsyncChangeStream[dict[str, Any]] | None:
        """The outbox's change stream, resumed after the checkpoint if it can be; None without change streams."""
        self._fresh_lease = False
        outbox = self.settings.outbox
        options: dict[str, Any] = {"max_await_time_ms": int(outbox.watch_await_s * 1000),
                                   "batch_size": outbox.batch_size}
        token, n = await self._checkpoint()
        self._n = n
        if token is not None and not self._force_fresh:
            try:
                stream = await self.outbox.watch(INSERTS, resume_after=token, **options)
            except OperationFailure as exc:  # history pruned, or a token from another stream: start afresh
                log.warning("outbox.resume_failed", error=str(exc), code=exc.code)
            else:
                try:
                    await self._settle_open_claims()
                    # Batches the last relay confirmed but had no quiet moment to clean up: their rows go now,
                    # not at this relay's first batch (a quiet system would otherwise keep them for good).
                    await self._cleanup()
                except BaseException:
                    await stream.close()
                    raise
                self._catching_up = False
                self.mode = "stream"
                log.info("outbox.tailing", resumed=True, skip=len(self._skip))
                return stream
        try:
            stream = await self.outbox.watch(INSERTS, **options)
        except OperationFailure as exc:
            log.info("outbox.no_change_stream", error=str(exc), code=exc.code)
            return None
        self._force_fresh = False
        try:
            await self._leave_stream()
            await self.reconcile()
            # What the outbox holds now is the backlog: rows committed before the stream opened, and some after
            # (those the stream delivers too). It goes first, by polling; the stream's events for it are skipped.
            backlog = [r["_id"] for r in await self.outbox.find({}, {"_id": 1}).sort([("seq", 1)]).to_list()]
            for start in range(0, len(backlog), outbox.batch_size):
                await self.run_once(only=backlog[start:start + outbox.batch_size])
                if not await self.hold_lease() or self._fresh_lease:
                    raise LeaseLost
        except BaseException:
            await stream.close()
            raise
        self._skip = set(backlog)
        self._catching_up = True
        self.mode = "stream"
        log.info("outbox.tailing", resumed=False)
        return stream

    async def _tail(self, stream: AsyncChangeStream[dict[str, Any]], stop: asyncio.Event) -> None:
        outbox = self.settings.outbox
        queue: asyncio.Queue[Change] = asyncio.Queue(maxsize=2 * outbox.batch_size)
        reader = asyncio.create_task(_read(stream, queue))
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                if not await self.hold_lease() or self._fresh_lease:
                    raise LeaseLost
                # While the stream is quiet the backlog cannot grow unseen: sampled as seldom as the safety poll.
                await self._measure_backlog(5.0 if self._uncleaned or not queue.empty()
                                            else outbox.safety_poll_s)
                # Unconfirmed batches are confirmed after a quiet moment; published rows are deleted after one
                # once the clean-up is due, so a trickle of events shares one clean-up (four commands) instead
                # of paying it per event. Otherwise wait for the next event until the lease is due for renewal.
                now = time.monotonic()
                timeout = self._lease_until - outbox.lease_ttl_s / 2 - now
                if self._inflight:
                    timeout = min(timeout, 0.25)
                if self._uncleaned:
                    timeout = min(timeout, max(self._cleaned_at + outbox.cleanup_every_s - now, 0.25))
                try:
                    batch = await _take(queue, reader, stopper, max(timeout, 0.01), outbox.batch_size)
                except StreamEnded as exc:
                    # Invalidated (the stream just ended) or refused for good: the checkpoint is no use any more.
                    cause = exc.__cause__
                    if cause is None or (isinstance(cause, OperationFailure) and not cause.has_error_label(
                            "ResumableChangeStreamError") and cause.code in UNRESUMABLE):
                        self._force_fresh = True
                    raise
                if batch:
                    await self._publish(batch)
                    if queue.empty():  # nothing to overlap with: confirm now rather than at the next event
                        await self._confirm_all()
                    if self._uncleaned >= outbox.cleanup_rows:
                        await self._confirm_all()
                        await self._cleanup()
                else:
                    await self._confirm_all()
                    if self._uncleaned and time.monotonic() >= self._cleaned_at + outbox.cleanup_every_s:
                        await self._cleanup()
            await self._confirm_all()
        finally:
            for _, acks, _ in self._inflight:  # left unconfirmed: the open claims are settled on the next start
                acks.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await acks
            self._inflight.clear()
            for task in (reader, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            with contextlib.suppress(Exception):
                await stream.close()
            self.mode = "starting"

    async def _publish(self, changes: list[Change]) -> None:
        """One batch of insert events, in commit order: claim, send, confirm (the confirmation is the checkpoint)."""
        rows = [dict(c["fullDocument"]) for c in changes if c.get("fullDocument")]
        if self._skip:
            seen = {r["_id"] for r in rows} & self._skip
            self._skip -= seen
            if self._catching_up and len(seen) < len(rows):
                # The first row the backlog did not hold was committed after it was read, and so was every later
                # one (commit order): nothing further can be the backlog's.
                self._skip.clear()
                self._catching_up = False
            rows = [r for r in rows if r["_id"] not in seen]
            if not rows:
                # Every event up to here is on the topics: an empty confirmed claim moves the checkpoint past
                # them, so the partial claims that named them can go (the drills expect no claim left). Only once
                # every earlier batch is confirmed: the checkpoint never passes a batch the broker has not acked.
                await self._confirm_all()
                self._n += 1
                await self.claims.insert_one({"_id": str(uuid.uuid4()), "n": self._n, "state": "sent", "ids": [],
                                              "token": changes[-1]["_id"], "owner": self.owner,
                                              "at": datetime.now(UTC), "size": 0})
                self._uncleaned += 1
        if not rows:
            return
        self._n += 1
        claim_id = str(uuid.uuid4())
        offsets = await self._end_offsets({r["topic"] for r in rows})
        await self.claims.insert_one({"_id": claim_id, "n": self._n, "state": "open", "offsets": offsets,
                                      "ids": [r["_id"] for r in rows], "token": changes[-1]["_id"],
                                      "owner": self.owner, "at": datetime.now(UTC), "size": len(rows)})
        futures = [await self.producer.send(r["topic"], bytes(r["value"]), key=r["key"].encode(),
                                            headers=record_headers(r)) for r in rows]
        # The next batch is claimed and sent while this one's acks arrive; confirmations stay in claim order,
        # so the newest confirmed claim still means every earlier one is on the topics.
        self._inflight.append((claim_id, asyncio.gather(*futures), len(rows)))
        while len(self._inflight) > 1:
            await self._confirm_oldest()

    async def _confirm_oldest(self) -> None:
        claim_id, acks, count = self._inflight[0]
        await acks
        self._inflight.popleft()
        await self.claims.update_one({"_id": claim_id}, {"$set": {"state": "sent"}})
        self._uncleaned += count
        self.published += count
        OUTBOX_PUBLISHED.labels(self.store.db.name).inc(count)

    async def _confirm_all(self) -> None:
        while self._inflight:
            await self._confirm_oldest()

    async def _cleanup(self) -> None:
        """Delete the rows of confirmed batches; the newest confirmed token moves to the checkpoint document."""
        done = await self.claims.find({"state": {"$in": ["sent", "partial"]}}).sort([("n", 1)]).to_list()
        sent = [c for c in done if c["state"] == "sent"]
        if sent:
            newest = sent[-1]
            await self.checkpoints.replace_one({"_id": "relay"}, {"token": newest["token"], "n": newest["n"]},
                                               upsert=True)
        await self._forget([i for c in done for i in (c["ids"] if c["state"] == "sent" else c["published"])])
        # A partial claim after the checkpoint still names rows the stream will deliver again: it stays.
        gone = [c["_id"] for c in done if c["state"] == "sent" or (sent and c["n"] < sent[-1]["n"])]
        if gone:
            await self.claims.delete_many({"_id": {"$in": gone}})
        self._uncleaned = 0
        self._cleaned_at = time.monotonic()

    async def _leave_stream(self) -> None:
        """Before polling (or a new stream): what the tail published leaves the outbox and the checkpoint goes."""
        await self._cleanup()
        await self.claims.delete_many({"state": "partial"})
        await self.checkpoints.delete_one({"_id": "relay"})

    # -- polling -----------------------------------------------------------------------------------
    async def _poll(self, stop: asyncio.Event) -> None:
        """Poll until stopped, or until it is time to try the change stream again."""
        self._fresh_lease = False
        self._unsettled = True  # a tail before may have left open claims
        await self._leave_stream()
        self.mode = "poll"
        watcher = asyncio.create_task(self._watch_inserts())
        more = True
        try:
            while not stop.is_set() and not self._stream_wanted():
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
                    published = await self.run_once()
                    # A short batch emptied the outbox as it was read; what was committed since, the open stream
                    # reports (``_wake``): a second read now would find nothing. Without the stream it is the poll.
                    more = published >= self.settings.outbox.batch_size or (published > 0 and not self.stream_live)
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
            self.mode = "starting"


def _claimed_offsets(claims: list[dict[str, Any]]) -> dict[TopicPartition, int]:
    """The earliest offset any of ``claims`` recorded for each partition: where their sends may have landed."""
    start: dict[TopicPartition, int] = {}
    for claim in claims:
        for tp_key, offset in claim["offsets"].items():
            topic, partition = tp_key.rsplit(":", 1)
            tp = TopicPartition(topic, int(partition))
            start[tp] = min(offset, start.get(tp, offset))
    return start


async def _read(stream: AsyncChangeStream[dict[str, Any]], queue: asyncio.Queue[Change]) -> None:
    async for change in stream:
        await queue.put(change)


async def _take(queue: asyncio.Queue[Change], reader: asyncio.Task[None], stopper: asyncio.Task[Any],
                wait_s: float, limit: int) -> list[Change]:
    """Up to ``limit`` events: the first waited for (at most ``wait_s``), then whatever is already queued."""
    batch: list[Change] = []
    if queue.empty():
        getter = asyncio.ensure_future(queue.get())
        done, _ = await asyncio.wait({getter, reader, stopper}, timeout=wait_s,
                                     return_when=asyncio.FIRST_COMPLETED)
        if getter in done:
            batch.append(getter.result())
        else:
            getter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await getter
            if reader in done:
                exc = reader.exception()
                raise StreamEnded from exc
            return []
    while len(batch) < limit and not queue.empty():
        batch.append(queue.get_nowait())
    return batch


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
