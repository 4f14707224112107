"""The outbox relay publishes every committed event exactly once, even when it dies mid-batch."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import msgspec

from kagi_shared.events import decode, new_envelope
from kagi_shared.events import invite as ev
from kagi_shared.kafka import ensure_topics, make_producer, read_topic
from kagi_shared.mongo import OUTBOX, Store, Tx
from kagi_shared.outbox import OutboxRelay
from kagi_shared.settings import Settings


async def commit_events(store: Store, topic: str, count: int, per_tx: int = 250) -> list[str]:
    ids: list[str] = []
    for start in range(0, count, per_tx):
        async def work(tx: Tx, start: int = start) -> None:
            for i in range(start, min(start + per_tx, count)):
                envelope = new_envelope(ev.StepUpFailed(account_id=f"acct-{i % 37}", code_id=None, reason="wrong"),
                                        source="kagi/test", subject=f"acct-{i % 37}")
                tx.publish(topic, envelope)
                ids.append(envelope.id)

        await store.transaction(work)
    return ids


async def published_ids(settings: Settings, topic: str) -> Counter[str]:
    return Counter(dict(r.headers)["ce_id"].decode() for r in await read_topic(settings, topic))


async def new_topic(settings: Settings) -> str:
    topic = f"test.relay.{uuid.uuid4().hex[:8]}"
    await ensure_topics(settings, [topic])
    return topic


async def test_relay_publishes_each_committed_event_once_in_order(settings: Settings, store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    ids = await commit_events(store, topic, 600)
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, settings)
    try:
        assert await relay.hold_lease()
        while await relay.run_once():
            pass
    finally:
        await producer.stop()
        await relay.release_lease()

    records = await read_topic(settings, topic)
    assert Counter(dict(r.headers)["ce_id"].decode() for r in records) == Counter(ids)
    # One aggregate's events keep their commit order on its partition.
    by_key: dict[bytes, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(decode(record.value)[0].id)
    for key, seen in by_key.items():
        assert seen == [i for i in ids if i in set(seen)], key
    assert await store.db[OUTBOX].count_documents({}) == 0


class CrashAfterSend:
    """The outbox collection, except that dropping published rows dies: a crash between send and mark."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def bulk_write(self, *args: Any, **kw: Any) -> Any:
        raise ConnectionError("process killed")


async def test_relay_crash_between_send_and_mark_does_not_duplicate(settings: Settings,
                                                                  store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    ids = await commit_events(store, topic, 300)
    quick = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(settings.outbox, batch_size=100,
                                                                             lease_ttl_s=0.5))
    producer = make_producer(settings, "test")
    await producer.start()
    try:
        first = OutboxRelay(store, producer, quick)
        assert await first.hold_lease()
        assert await first.run_once() == 100
        first.outbox = CrashAfterSend(first.outbox)
        try:
            await first.run_once()
            raise AssertionError("the injected crash did not happen")
        except ConnectionError:
            pass
        assert len(await published_ids(settings, topic)) == 200  # the second batch reached the broker …
        assert await store.db[OUTBOX].count_documents({}) == 200  # … but was never marked

        await asyncio.sleep(0.6)  # the dead relay's lease runs out
        second = OutboxRelay(store, producer, quick)
        assert await second.hold_lease()  # taking over settles the claim first
        while await second.run_once():
            pass
    finally:
        await producer.stop()

    assert await published_ids(settings, topic) == Counter(ids)


async def test_relay_killed_mid_load_and_restarted_publishes_everything_once(settings: Settings,
                                                                            store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    ids = await commit_events(store, topic, 3000, per_tx=500)
    env = {**os.environ, "KAGI_OUTBOX_BATCH_SIZE": "50", "KAGI_OUTBOX_LEASE_TTL_S": "1"}
    script = str(Path(__file__).with_name("relay_process.py"))

    def start() -> subprocess.Popen[bytes]:
        return subprocess.Popen([sys.executable, script, store.db.name], env=env,  # noqa: S603
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    kills = 0
    proc = start()
    try:
        for threshold in (400, 1200, 2000):
            while 3000 - await store.db[OUTBOX].count_documents({}) < threshold:
                assert proc.poll() is None, "relay died on its own"
                await asyncio.sleep(0.02)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            proc = start()
        for _ in range(600):
            if await store.db[OUTBOX].count_documents({}) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    assert kills == 3
    assert await store.db[OUTBOX].count_documents({}) == 0
    assert await published_ids(settings, topic) == Counter(ids)


class Commands:
    """Every command a client sends (PyMongo command monitoring)."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def started(self, event: Any) -> None:
        self.names.append(event.command_name)

    def succeeded(self, event: Any) -> None:
        pass

    def failed(self, event: Any) -> None:
        pass


async def run_relay(relay: OutboxRelay) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(relay.run(stop))


async def test_an_idle_relay_sleeps_until_a_commit_wakes_it(settings: Settings) -> None:
    from pymongo import AsyncMongoClient, monitoring

    from kagi_shared.mongo import make_client

    commands = Commands()
    listener = type("Listener", (monitoring.CommandListener,), {
        "started": commands.started, "succeeded": commands.succeeded, "failed": commands.failed})()
    watched: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, event_listeners=[listener])
    store = Store(watched, f"test_relay_{uuid.uuid4().hex[:8]}")
    writer = Store(make_client(settings), store.db.name)
    topic = await new_topic(settings)
    # Polls alone would find a row only after a minute: what publishes it at once is the change stream.
    slow = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(
        settings.outbox, idle_poll_max_s=60.0, lease_ttl_s=120.0, watch_await_s=5.0))
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, slow)
    stop, task = await run_relay(relay)
    try:
        for _ in range(100):
            if relay.stream_live:
                break
            await asyncio.sleep(0.05)
        assert relay.stream_live
        await asyncio.sleep(0.5)
        before = len(commands.names)
        await asyncio.sleep(3)
        idle = commands.names[before:]
        assert len(idle) <= 2, idle  # at most a getMore of the stream, where polling sent ~12 queries

        ids = await commit_events(writer, topic, 3)
        for _ in range(40):
            if relay.published == 3:
                break
            await asyncio.sleep(0.05)
        assert relay.published == 3
        assert await published_ids(settings, topic) == Counter(ids)
    finally:
        stop.set()
        await task
        await producer.stop()
        await watched.drop_database(store.db.name)
        await watched.close()
        await writer.client.close()


class NoChangeStream(OutboxRelay):
    async def _watch_inserts(self) -> None:
        await asyncio.Event().wait()  # a database without change streams: the stream never opens


async def test_without_a_change_stream_the_relay_polls_with_a_bounded_backoff(settings: Settings,
                                                                             store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    polled = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(
        settings.outbox, idle_poll_max_s=0.4, lease_ttl_s=120.0))
    producer = make_producer(settings, "test")
    await producer.start()
    relay = NoChangeStream(store, producer, polled)
    stop, task = await run_relay(relay)
    try:
        await asyncio.sleep(2)  # long enough for the backoff to reach its cap
        assert not relay.stream_live
        ids = await commit_events(store, topic, 2)
        for _ in range(30):
            if relay.published == 2:
                break
            await asyncio.sleep(0.05)
        assert relay.published == 2  # found within the cap (0.4 s), with a margin for a busy machine
        assert await published_ids(settings, topic) == Counter(ids)
    finally:
        stop.set()
        await task
        await producer.stop()
