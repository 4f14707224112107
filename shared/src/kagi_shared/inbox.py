"""Idempotent event handling: the inbox, retries, and dead-lettering to ``<topic>.dlt``.

Each handled event leaves an inbox row (``_id = consumer:event id``, unique) written in
the same transaction as the handler's own writes, so a redelivered event is skipped and a
crash mid-handler leaves nothing behind. An event that keeps failing, or that cannot be
decoded at all, goes to ``<topic>.dlt`` with its origin and the error, and the partition
moves on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Literal, Protocol

import msgspec
from pymongo.errors import DuplicateKeyError

from kagi_shared.events.envelope import Envelope, Event, UnknownEventError, decode_data, decode_envelope
from kagi_shared.logging import get_logger
from kagi_shared.metrics import EVENTS_CONSUMED
from kagi_shared.mongo import Store, Tx
from kagi_shared.settings import Settings
from kagi_shared.tracing import SpanKind, span

log = get_logger(__name__)
INBOX = "inbox"

Handler = Callable[[Envelope, Any, Tx], Awaitable[None]]
Outcome = Literal["handled", "duplicate", "ignored", "dead"]


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
    ) -> None:
        self.name = name
        self.store = store
        self.handlers = {cls.__struct_config__.tag: h for cls, h in handlers.items()}
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
        origin = {"topic": topic, "partition": partition, "offset": offset}
        try:
            envelope = decode_envelope(value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return await self._dead(topic, key, value, origin, f"undecodable envelope: {exc}")
        handler = self.handlers.get(envelope.type)
        if handler is None:
            try:
                decode_data(envelope)
            except (UnknownEventError, msgspec.ValidationError, msgspec.DecodeError) as exc:
                return await self._dead(topic, key, value, origin, str(exc), envelope.id)
            self.counts["ignored"] += 1
            return "ignored"
        try:
            event = decode_data(envelope)
        except (UnknownEventError, msgspec.ValidationError, msgspec.DecodeError) as exc:
            return await self._dead(topic, key, value, origin, str(exc), envelope.id)

        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                outcome = await self._handle_once(envelope, event, handler)
                self.counts[outcome] += 1
                return outcome
            except Exception as exc:
                error = f"{type(exc).__name__}: {exc}"
                log.warning("consumer.attempt_failed", consumer=self.name, event_id=envelope.id,
                            event_type=envelope.type, attempt=attempt, error=error)
                if attempt < self.max_attempts:
                    await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
        return await self._dead(topic, key, value, origin, error, envelope.id)

    async def _handle_once(self, envelope: Envelope, event: Event, handler: Handler) -> Outcome:
        inbox_id = f"{self.name}:{envelope.id}"

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
        headers = [
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
