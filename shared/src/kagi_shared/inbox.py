"""Idempotent event handling: the inbox, retries, and dead-lettering to ``<topic>.dlt``.

Each handled event leaves an inbox row (``_id = consumer:event id``, unique) written in
the same transaction as the handler's own writes, so a redelivered event is skipped and a
crash mid-handler leaves nothing behind. An event that keeps failing, or that cannot be
decoded at all, goes to ``<topic>.dlt`` with its origin and the error, and the partition
moves on.

``process_many`` handles a batch of messages in one transaction (one inbox ``insert_many``,
handlers that can take many events at once): on the embedded database a transaction costs
about as much as the few writes in it, so per-event transactions cap a consumer at a few
events a second. If anything in the batch fails, the batch is rolled back and its events go
through ``process`` one by one, so a poison event is dead-lettered alone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from itertools import groupby
from typing import Any, Literal, NamedTuple, Protocol

import msgspec
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from kagi_shared.events.envelope import (
    Envelope,
    Event,
    UnknownEventError,
    decode_data,
    decode_envelope,
    kafka_headers,
)
from kagi_shared.logging import get_logger
from kagi_shared.metrics import EVENTS_CONSUMED
from kagi_shared.mongo import Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.tracing import SpanKind, span

log = get_logger(__name__)
OUTAGE_BACKOFF_MAX_S = 5.0
INBOX = "inbox"

Handler = Callable[[Envelope, Any, Tx], Awaitable[None]]
BatchHandler = Callable[[list[tuple[Envelope, Any]], Tx], Awaitable[None]]
"""Handles, in order and in one transaction, consecutive events of one type; may run again if the
transaction is retried, so it keeps no state of its own between calls."""
Outcome = Literal["handled", "duplicate", "ignored", "dead"]


class Message(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes
    partition: int = -1
    offset: int = -1


class _Decoded(NamedTuple):
    position: int
    message: Message
    envelope: Envelope
    event: Event


class DeadLetterSink(Protocol):
    async def __call__(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None: ...


class InboxConsumer:
    """Runs the handler registered for each event type of a topic, once per event id."""

    def __init__(
        self,
        name: str,
        store: Store,
        handlers: Mapping[type[Event], Handler],
        dead_letter: DeadLetterSink,
        settings: Settings,
        *,
        ignore_unhandled: bool = True,
        batch_handlers: Mapping[type[Event], BatchHandler] | None = None,
    ) -> None:
        self.name = name
        self.store = store
        self.handlers = {cls.__struct_config__.tag: h for cls, h in handlers.items()}
        self.batch_handlers = {cls.__struct_config__.tag: h for cls, h in (batch_handlers or {}).items()}
        self.dead_letter = dead_letter
        self.max_attempts = settings.consumer.max_attempts
        self.backoff = settings.consumer.retry_backoff_s
        self.ignore_unhandled = ignore_unhandled
        self.counts: dict[str, int] = {"handled": 0, "duplicate": 0, "ignored": 0, "dead": 0}

    async def process(
        self, topic: str, key: bytes | None, value: bytes, *, partition: int = -1, offset: int = -1
    ) -> Outcome:
        parent = _traceparent(value)
        with span(f"consume {topic}", SpanKind.CONSUMER, {"traceparent": parent} if parent else None,
                  {"messaging.system": "kafka", "messaging.destination.name": topic,
                   "messaging.consumer.group.name": self.name}) as current:
            outcome = await self._process(topic, key, value, partition=partition, offset=offset)
            current.set_attribute("kagi.outcome", outcome)
        EVENTS_CONSUMED.labels(self.name, topic, outcome).inc()
        return outcome

    async def _process(
        self, topic: str, key: bytes | None, value: bytes, *, partition: int, offset: int
    ) -> Outcome:
        decoded = await self._decode(Message(topic, key, value, partition, offset))
        if isinstance(decoded, str):
            return decoded
        envelope, event, handler = decoded
        origin = {"topic": topic, "partition": partition, "offset": offset}
        error = ""
        attempt = outage = 0
        while attempt < self.max_attempts:
            try:
                outcome = await self._handle_once(envelope, event, handler)
                self.counts[outcome] += 1
                return outcome
            except ConnectionFailure as exc:
                # The database is away, the event is not at fault: wait for it instead of spending the event's
                # attempts and dead-lettering good work. The offset is not committed meanwhile.
                outage += 1
                log.warning("consumer.database_unavailable", consumer=self.name, event_id=envelope.id,
                            waits=outage, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(min(self.backoff * 2 ** min(outage, 6), OUTAGE_BACKOFF_MAX_S))
            except Exception as exc:
                attempt += 1
                error = f"{type(exc).__name__}: {exc}"
                log.warning("consumer.attempt_failed", consumer=self.name, event_id=envelope.id,
                            event_type=envelope.type, attempt=attempt, error=error)
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        return await self._dead(topic, key, value, origin, error, envelope.id)

    async def _decode(self, m: Message) -> tuple[Envelope, Event, Handler] | Outcome:
        """The envelope, event and handler of a message, or the outcome if it has none (ignored or dead)."""
        origin = {"topic": m.topic, "partition": m.partition, "offset": m.offset}
        try:
            envelope = decode_envelope(m.value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return await self._dead(m.topic, m.key, m.value, origin, f"undecodable envelope: {exc}")
        handler = self.handlers.get(envelope.type)
        try:
            event = decode_data(envelope)
        except (UnknownEventError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            return await self._dead(m.topic, m.key, m.value, origin, str(exc), envelope.id)
        if handler is None:
            self.counts["ignored"] += 1
            return "ignored"
        return envelope, event, handler

    async def process_many(self, messages: Sequence[Message]) -> list[Outcome]:
        """Handle a batch in one transaction, each event once; the outcomes in the messages' order.

        Already handled ids are found with one query and repeats within the batch are duplicates.
        On any failure the transaction is rolled back and the events left are handled by ``process``
        one at a time (its retries and dead-lettering), so nothing is lost or applied twice.
        """
        if not messages:
            return []
        topic = messages[0].topic
        started = time.perf_counter()
        outcomes: list[Outcome | None] = [None] * len(messages)
        pending: list[_Decoded] = []
        first_seen: set[str] = set()
        fell_back: set[int] = set()
        with span(f"consume {topic}", SpanKind.CONSUMER, None,
                  {"messaging.system": "kafka", "messaging.destination.name": topic,
                   "messaging.consumer.group.name": self.name,
                   "messaging.batch.message_count": len(messages)}):
            for i, message in enumerate(messages):
                decoded = await self._decode(message)
                if isinstance(decoded, str):
                    outcomes[i] = decoded
                elif decoded[0].id in first_seen:
                    outcomes[i] = "duplicate"
                else:
                    first_seen.add(decoded[0].id)
                    pending.append(_Decoded(i, message, decoded[0], decoded[1]))
            if pending:
                try:
                    cursor = self.store.db[INBOX].find(
                        {"_id": {"$in": [self._inbox_id(p.envelope) for p in pending]}}, {"_id": 1})
                    done = {doc["_id"] async for doc in cursor}
                except PyMongoError as exc:
                    # Unknown yet: the batch's transaction fails on them and ``process`` sorts them out one by one
                    # (it waits out a database outage), rather than the error ending the consumer's agent.
                    log.warning("consumer.batch_lookup_failed", consumer=self.name, error=f"{type(exc).__name__}")
                    done = set()
                for p in pending:
                    if self._inbox_id(p.envelope) in done:
                        outcomes[p.position] = "duplicate"
                pending = [p for p in pending if outcomes[p.position] is None]
            for outcome in outcomes:
                if outcome == "duplicate":
                    self.counts["duplicate"] += 1
            if pending:
                try:
                    await self.store.transaction(lambda tx: self._handle_batch(pending, tx))
                except Exception as exc:
                    log.warning("consumer.batch_failed", consumer=self.name, events=len(pending),
                                error=f"{type(exc).__name__}: {exc}")
                    for p in pending:  # ``process`` records their spans and metrics itself
                        m = p.message
                        outcomes[p.position] = await self.process(m.topic, m.key, m.value, partition=m.partition,
                                                               offset=m.offset)
                    fell_back = {p.position for p in pending}
                else:
                    for p in pending:
                        outcomes[p.position] = "handled"
                    self.counts["handled"] += len(pending)
            log.info("consumer.batch", consumer=self.name, messages=len(messages), handled=len(pending),
                     fell_back=bool(fell_back), seconds=round(time.perf_counter() - started, 3))
        result: list[Outcome] = []
        for i, outcome in enumerate(outcomes):
            assert outcome is not None
            result.append(outcome)
            if i not in fell_back:
                EVENTS_CONSUMED.labels(self.name, topic, outcome).inc()
        return result

    async def _handle_batch(self, pending: list[_Decoded], tx: Tx) -> None:
        await tx.db[INBOX].insert_many(
            [{"_id": self._inbox_id(p.envelope), "type": p.envelope.type} for p in pending], session=tx.session)
        for tag, run in groupby(pending, key=lambda p: p.envelope.type):
            events = list(run)
            batch_handler = self.batch_handlers.get(tag)
            if batch_handler is not None:
                await batch_handler([(p.envelope, p.event) for p in events], tx)
            else:
                handler = self.handlers[tag]
                for p in events:
                    await handler(p.envelope, p.event, tx)

    def _inbox_id(self, envelope: Envelope) -> str:
        return f"{self.name}:{envelope.id}"

    async def _handle_once(self, envelope: Envelope, event: Event, handler: Handler) -> Outcome:
        inbox_id = self._inbox_id(envelope)

        async def work(tx: Tx) -> None:
            await tx.db[INBOX].insert_one({"_id": inbox_id, "type": envelope.type}, session=tx.session)
            await handler(envelope, event, tx)

        try:
            await self.store.transaction(work)
        except DuplicateKeyError as exc:
            if inbox_id in str(exc):
                return "duplicate"
            raise
        return "handled"

    async def _dead(
        self, topic: str, key: bytes | None, value: bytes, origin: dict[str, Any], error: str,
        event_id: str | None = None,
    ) -> Outcome:
        log.error("consumer.dead_letter", consumer=self.name, event_id=event_id, error=error, **origin)
        try:  # what the record said it was, so a DLT reader can route and deduplicate as on the origin topic
            carried = kafka_headers(decode_envelope(value))
        except (msgspec.DecodeError, msgspec.ValidationError):
            carried = []
        headers = [
            *carried,
            ("dlt_origin_topic", topic.encode()),
            ("dlt_origin_partition", str(origin["partition"]).encode()),
            ("dlt_origin_offset", str(origin["offset"]).encode()),
            ("dlt_consumer", self.name.encode()),
            ("dlt_error", error[:1000].encode()),
        ]
        await self.dead_letter(f"{topic}.dlt", key, value, headers)
        self.counts["dead"] += 1
        return "dead"


class _TraceOnly(msgspec.Struct):
    traceparent: str | None = None


_trace_decoder = msgspec.json.Decoder(_TraceOnly)


def _traceparent(value: bytes) -> str | None:
    try:
        return _trace_decoder.decode(value).traceparent
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
