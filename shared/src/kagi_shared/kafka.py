"""aiokafka producer, admin and topic creation, configured from settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from kagi_shared.events.envelope import Envelope, encode, kafka_headers
from kagi_shared.settings import Settings
from kagi_shared.topics import CATALOGUE


def security(settings: Settings) -> dict[str, Any]:
    """Connection security for every Kafka client: plaintext on loopback, mutual TLS in production."""
    kafka = settings.kafka
    if kafka.security_protocol == "PLAINTEXT":
        return {}
    context = create_ssl_context(cafile=kafka.ssl_cafile, certfile=kafka.ssl_certfile, keyfile=kafka.ssl_keyfile)
    return {"security_protocol": "SSL", "ssl_context": context}


def make_consumer(settings: Settings, *topics: str, **options: Any) -> AIOKafkaConsumer:
    options.setdefault("fetch_max_wait_ms", settings.kafka.fetch_max_wait_ms)
    options.setdefault("consumer_timeout_ms", settings.kafka.fetch_recheck_ms)
    return AIOKafkaConsumer(*topics, bootstrap_servers=settings.kafka_bootstrap, **security(settings), **options)


class FetchWait:
    """How long a consumer's next fetch may wait at the broker: short while messages flow, long once quiet.

    The embedded broker answers a waiting fetch only at fixed points within its wait (it re-reads the log after
    half the remaining wait, then sleeps half again before answering), never the moment a message arrives. A
    short wait therefore keeps latency low but means a fetch every few milliseconds from every consumer, which
    is what an idle system spent its CPU on. So the wait stays short while fetches bring records and, once the
    partitions have been quiet for ``quiet_after_s``, doubles with every empty fetch up to ``idle_ms``: a quiet
    consumer asks once per ``idle_ms`` (2 s by default), and the first record after a quiet spell costs at most
    about ¾ of ``idle_ms``. Real Kafka answers as soon as a record arrives; there both waits can simply be the same.
    """

    def __init__(self, busy_ms: int, idle_ms: int, quiet_after_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.busy_ms = busy_ms
        self.idle_ms = max(idle_ms, busy_ms)
        self.quiet_after_s = quiet_after_s
        self._clock = clock
        self._last_records = clock()
        self.current_ms = busy_ms

    def after_fetch(self, got_records: bool) -> int:
        """Record a fetch's outcome; returns the wait for the next fetch in milliseconds."""
        now = self._clock()
        if got_records:
            self._last_records = now
            self.current_ms = self.busy_ms
        elif now - self._last_records >= self.quiet_after_s:
            self.current_ms = min(self.idle_ms, max(self.current_ms * 2, 1))
        return self.current_ms


def adapt_fetch_wait(consumer: AIOKafkaConsumer, settings: Settings) -> FetchWait:
    """Let a *started* consumer's fetch wait follow ``FetchWait``; returns the policy (for tests and metrics)."""
    kafka = settings.kafka
    policy = FetchWait(kafka.fetch_max_wait_ms, kafka.fetch_max_wait_idle_ms, kafka.fetch_quiet_after_s)
    # aiokafka has no public hook: its fetcher builds every request from ``_fetch_max_wait_ms`` and runs each
    # through ``_proc_fetch_request`` (True when it buffered records), looked up on the instance every time.
    fetcher = consumer._fetcher
    fetch = fetcher._proc_fetch_request

    async def fetch_and_adapt(*args: Any) -> bool:
        got_records = bool(await fetch(*args))
        fetcher._fetch_max_wait_ms = policy.after_fetch(got_records)
        return got_records

    fetcher._proc_fetch_request = fetch_and_adapt
    return policy


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        **security(settings),
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka.enable_idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
    )


async def publish(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> None:
    """Send one event outside an outbox (tools, simulators) as every Kagi record is written: the subject as key,
    the structured CloudEvent as value, the CloudEvents headers (``kafka_headers``)."""
    await (await enqueue(producer, topic, envelope))


async def enqueue(producer: AIOKafkaProducer, topic: str, envelope: Envelope) -> asyncio.Future[Any]:
    """``publish`` without waiting for the broker: the future resolves once it acknowledged the record, so many
    sends share round trips (the producer keeps their order per partition)."""
    future: asyncio.Future[Any] = await producer.send(topic, encode(envelope), key=envelope.subject.encode(),
                                                      headers=kafka_headers(envelope))
    return future


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the catalogue's topics (and their DLTs) that do not exist yet; returns the created ones."""
    wanted: dict[str, int] = {}
    for topic in CATALOGUE:
        wanted[topic.name] = topic.partitions
        if topic.consumers:
            wanted[topic.dlt] = 1
    if names is not None:
        wanted = {n: wanted.get(n, settings.kafka.default_partitions) for n in names}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="kagi-admin",
                                **security(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, p, 1) for n, p in wanted.items() if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topic exists either way
        # Metadata for a new topic propagates asynchronously; wait until it is visible.
        for _ in range(50):
            if {t.name for t in missing} <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()


async def read_topic(settings: Settings, topic: str, timeout_s: float = 10.0) -> list[ConsumerRecord[bytes, bytes]]:
    """Every message currently on ``topic``, from the first offset to the end (no consumer group)."""
    consumer = make_consumer(settings, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(await partitions_of(consumer, topic))]
        ends = await consumer.end_offsets(partitions)
        todo = {tp for tp in partitions if ends[tp] > 0}
        records: list[ConsumerRecord[bytes, bytes]] = []
        if not todo:
            return records
        consumer.assign(list(todo))
        await consumer.seek_to_beginning(*todo)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while todo and loop.time() < deadline:
            batch = await consumer.getmany(*todo, timeout_ms=500)
            for tp, messages in batch.items():
                records.extend(messages)
                if messages and messages[-1].offset + 1 >= ends[tp]:
                    todo.discard(tp)
        return records
    finally:
        await consumer.stop()


async def log_ends(consumer: AIOKafkaConsumer, partitions: list[TopicPartition],
                   timeout_s: float = 30.0) -> dict[TopicPartition, int]:
    """The end of each partition's log (its last offset + 1), read from the log itself.

    ``end_offsets`` is not enough on the embedded broker: Tansu answers ListOffsets(latest) with the base offset
    of the partition's last record batch + 1, short of the end whenever that batch holds more than one record
    (measured: batches of 1, 3 and 5 records at offsets 0..8, ``end_offsets`` says 5). So the last batch is read
    and its last offset taken; on Kafka, which reports the end itself, that reads one record per partition.
    Leaves ``consumer`` with no partitions assigned."""
    reported = await consumer.end_offsets(partitions)
    ends = {tp: 0 for tp in partitions}
    todo = {tp: offset - 1 for tp, offset in reported.items() if offset > 0}
    if not todo:
        return ends
    consumer.assign(list(todo))
    for tp, offset in todo.items():
        consumer.seek(tp, offset)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while todo and loop.time() < deadline:
        batch = await consumer.getmany(*todo, timeout_ms=500)
        for tp, records in batch.items():
            if records:
                ends[tp] = records[-1].offset + 1
                todo.pop(tp, None)
    consumer.assign([])
    if todo:
        raise TimeoutError(f"could not read the last batch of {sorted(map(str, todo))} in {timeout_s:.0f} s")
    return ends


async def topic_sizes(settings: Settings, topics: list[str]) -> dict[str, int]:
    """How far each topic's partitions reach, summed (its record count while nothing has been deleted), from the
    logs themselves (``log_ends``)."""
    consumer = make_consumer(settings, group_id=None, enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        partitions = [TopicPartition(t, p) for t in topics for p in sorted(await partitions_of(consumer, t))]
        sizes = dict.fromkeys(topics, 0)
        for tp, end in (await log_ends(consumer, partitions)).items():
            sizes[tp.topic] += end
        return sizes
    finally:
        await consumer.stop()


async def partitions_of(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """A topic's partition numbers, waiting briefly for metadata of a topic created a moment ago."""
    for _ in range(50):
        found = consumer.partitions_for_topic(topic)
        if found:
            return set(found)
        await consumer._client.force_metadata_update()  # the public API offers no awaitable refresh
        await asyncio.sleep(0.1)
    raise LookupError(f"topic {topic} not found")
