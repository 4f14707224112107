"""The outbox relay publishes every committed event exactly once, even when it dies mid-batch."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import pytest

from kagi_shared.events import decode, new_envelope
from kagi_shared.events import invite as ev
from kagi_shared.kafka import ensure_topics, make_producer, read_topic, topic_sizes
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
            async def published_enough(threshold: int = threshold) -> bool:
                return 3000 - await store.db[OUTBOX].count_documents({}) >= threshold

            await while_alive(proc, published_enough)
            proc = restarted(proc, start)
            kills += 1
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


async def while_alive(proc: subprocess.Popen[bytes], condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait until ``condition`` holds, failing at once if the relay process dies on its own meanwhile."""
    while not await condition():
        assert proc.poll() is None, "relay died on its own"
        await asyncio.sleep(0.02)


def restarted(proc: subprocess.Popen[bytes], start: Callable[[], subprocess.Popen[bytes]]) -> subprocess.Popen[bytes]:
    """kill -9 the relay process, then start a new one."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return start()


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
        for _ in range(600):  # generous: a loaded machine is slow to open the stream, not wrong
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
        # Well under the minute a poll would take: only the stream's wake-up can publish them in time.
        for _ in range(600):
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


@pytest.fixture
def standalone_mongo(tmp_path: Path) -> Iterator[str]:
    """The embedded database started as a standalone server: like a standalone mongod it has no change streams
    (``$changeStream`` answers 40573) and no transactions."""
    import socket

    from pymongo import MongoClient

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "kagi_local.embedded_db", "--host", "127.0.0.1", "--port", str(port),  # noqa: S603
                             "--storage-path", str(tmp_path / "standalone"), "--standalone",
                             "--log-level", "WARNING"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    uri = f"mongodb://127.0.0.1:{port}/?directConnection=true"
    try:
        client: MongoClient[Any] = MongoClient(uri, serverSelectionTimeoutMS=30_000)
        client.admin.command("ping")
        client.close()
        yield uri
    finally:
        proc.terminate()
        proc.wait(timeout=30)


async def test_without_change_streams_the_relay_polls_with_a_bounded_backoff(settings: Settings,
                                                                            standalone_mongo: str) -> None:
    from pymongo import AsyncMongoClient

    from kagi_shared.mongo import outbox_row

    client: AsyncMongoClient[Any] = AsyncMongoClient(standalone_mongo, tz_aware=True)
    store = Store(client, "relay")
    topic = await new_topic(settings)
    polled = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(
        settings.outbox, idle_poll_max_s=0.4, lease_ttl_s=120.0))
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, polled)
    stop, task = await run_relay(relay)
    try:
        await asyncio.sleep(2)  # long enough for the backoff to reach its cap
        assert relay.mode == "poll"
        assert not relay.stream_live
        rows = [outbox_row(topic, new_envelope(ev.StepUpFailed(account_id="acct-1", code_id=None, reason="wrong"),
                                               source="kagi/test", subject="acct-1")) for _ in range(2)]
        await store.db[OUTBOX].insert_many(rows)  # no transactions on a standalone server
        for _ in range(30):
            if relay.published == 2:
                break
            await asyncio.sleep(0.05)
        assert relay.published == 2  # found within the cap (0.4 s), with a margin for a busy machine
        assert await published_ids(settings, topic) == Counter(r["_id"] for r in rows)
    finally:
        stop.set()
        await task
        await producer.stop()
        await client.close()


async def wait_for(predicate: Any, seconds: float = 30.0) -> None:
    for _ in range(int(seconds / 0.05)):
        if await predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out")


async def test_the_relay_tails_the_change_stream_and_checkpoints_its_resume_token(settings: Settings,
                                                                                 store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    before = await commit_events(store, topic, 30)  # committed before the relay started: drained, then the tail
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, settings)
    stop, task = await run_relay(relay)
    try:
        await wait_for(lambda: _true(relay.mode == "stream"))
        during = await commit_events(store, topic, 120, per_tx=40)
        await wait_for(lambda: _true(relay.published == 150))
        # Quiet: the published rows leave the outbox and the last batch's token becomes the checkpoint.
        await wait_for(lambda: _zero(store.db[OUTBOX].count_documents({})))
        checkpoint = await store.db["outbox_checkpoint"].find_one({"_id": "relay"})
        assert checkpoint is not None and "_data" in checkpoint["token"]
    finally:
        stop.set()
        await task
        await relay.release_lease()
    records = await read_topic(settings, topic)
    ids = before + during
    assert Counter(dict(r.headers)["ce_id"].decode() for r in records) == Counter(ids)
    by_key: dict[bytes, list[str]] = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        by_key.setdefault(record.key, []).append(decode(record.value)[0].id)
    for key, seen in by_key.items():  # commit order per aggregate
        assert seen == [i for i in ids if i in set(seen)], key

    # A new relay resumes after the checkpoint: it reads no confirmed event again and publishes only new ones.
    later = await commit_events(store, topic, 10)
    second = OutboxRelay(store, producer, settings)
    stop, task = await run_relay(second)
    try:
        await wait_for(lambda: _true(second.published == 10))
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await task
        await producer.stop()
    assert second.published == 10
    assert await published_ids(settings, topic) == Counter(ids + later)


async def _true(value: bool) -> bool:
    return value


async def _zero(count: Any) -> bool:
    return bool(await count == 0)


class FailFirstConfirmation:
    """The claims collection, except that the first batch's confirmation fails after its send: a relay dying
    between the broker's acknowledgement and the checkpoint."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def update_one(self, query: Any, update: Any, **kw: Any) -> Any:
        if not self.failed and update.get("$set", {}).get("state") == "sent":
            self.failed = True
            raise ConnectionError("process killed")
        return await self.real.update_one(query, update, **kw)


async def test_a_tail_that_died_before_its_checkpoint_resends_nothing_the_broker_has(settings: Settings,
                                                                                   store_factory: Any) -> None:
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, settings)
    relay.claims = FailFirstConfirmation(relay.claims)  # type: ignore[assignment]
    stop, task = await run_relay(relay)
    try:
        await wait_for(lambda: _true(relay.mode == "stream"))
        first = await commit_events(store, topic, 50)
        await wait_for(lambda: _true(relay.claims.failed))
        # The batch reached the broker unconfirmed; the relay starts over, resumes before it and skips it: with
        # nothing else to send, the checkpoint still moves past it and no claim is left.
        await wait_for(lambda: _zero(store.db["outbox_claims"].count_documents({})))
        await wait_for(lambda: _zero(store.db[OUTBOX].count_documents({})))
        assert relay.published == 0
        more = await commit_events(store, topic, 20)
        await wait_for(lambda: _true(relay.published >= 20 and relay.mode == "stream"))
        # The clean-up deletes the rows, then their claims: wait for the claims (the later of the two).
        await wait_for(lambda: _zero(store.db["outbox_claims"].count_documents({})))
        assert await store.db[OUTBOX].count_documents({}) == 0
    finally:
        stop.set()
        await task
        await producer.stop()
    assert relay.published == 20  # the 50 were sent once, before the failure (not counted), and never again
    assert await published_ids(settings, topic) == Counter(first + more)


async def test_a_resumed_tail_cleans_up_what_its_predecessor_confirmed_even_with_nothing_new(
        settings: Settings, store_factory: Any) -> None:
    """A relay that dies after its batches were confirmed but before the quiet moment that deletes their rows:
    its successor resumes after them and, though nothing else is ever committed, the outbox empties."""
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    producer = make_producer(settings, "test")
    await producer.start()
    try:
        first = OutboxRelay(store, producer, settings)

        async def never() -> None:  # dies before any quiet moment
            first._uncleaned = 0

        first._cleanup = never  # type: ignore[method-assign]
        stop, task = await run_relay(first)
        await wait_for(lambda: _true(first.mode == "stream"))
        ids = await commit_events(store, topic, 40)
        await wait_for(lambda: _true(first.published == 40))
        stop.set()
        await task
        assert await store.db[OUTBOX].count_documents({}) == 40  # published, still there

        second = OutboxRelay(store, producer, settings)
        stop, task = await run_relay(second)
        try:
            await wait_for(lambda: _zero(store.db[OUTBOX].count_documents({})))
            # The rows go first, then the claims that named them (one clean-up, two writes): wait for both.
            await wait_for(lambda: _zero(store.db["outbox_claims"].count_documents({})))
        finally:
            stop.set()
            await task
        assert second.published == 0
    finally:
        await producer.stop()
    assert await published_ids(settings, topic) == Counter(ids)


async def topic_size(settings: Settings, topic: str) -> int:
    """How many records ``topic`` holds, from its logs: the broker's own end offsets count a relay's last batch of
    many rows as one (see ``kagi_shared.kafka.log_ends``), and the drain below waited out its five minutes."""
    return (await topic_sizes(settings, [topic]))[topic]


async def test_a_tailing_relay_killed_while_commits_go_on_publishes_everything_once(settings: Settings,
                                                                                   store_factory: Any,
                                                                                   tmp_path: Path) -> None:
    """kill -9 of the relay process while another task keeps committing: each restart resumes from the
    checkpoint (the log says so) and the topic ends with every event exactly once."""
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    env = {**os.environ, "KAGI_OUTBOX_BATCH_SIZE": "50", "KAGI_OUTBOX_LEASE_TTL_S": "1"}
    script = str(Path(__file__).with_name("relay_process.py"))
    log = tmp_path / "relay.log"
    ids: list[str] = []

    def start() -> subprocess.Popen[bytes]:
        with log.open("ab") as out:
            return subprocess.Popen([sys.executable, script, store.db.name], env=env,  # noqa: S603
                                    stdout=out, stderr=subprocess.STDOUT)

    done = asyncio.Event()

    async def commit_steadily() -> None:
        while not done.is_set():
            ids.extend(await commit_events(store, topic, 20, per_tx=10))
            await asyncio.sleep(0.05)

    proc = start()
    writer = asyncio.create_task(commit_steadily())
    kills = 0
    try:
        for run in range(1, 4):
            # Killed while tailing, after it confirmed some batches of its own (not while it works off a backlog).
            async def tailing(run: int = run) -> bool:
                return log.read_text().count("outbox.tailing") >= run

            await while_alive(proc, tailing)

            async def published_more(size: int = await topic_size(settings, topic)) -> bool:
                return await topic_size(settings, topic) >= size + 100

            await while_alive(proc, published_more)
            proc = restarted(proc, start)
            kills += 1
        done.set()
        await writer
        for _ in range(3000):  # drained within 5 min: alone the whole test takes ~15 s, loaded longer
            if await topic_size(settings, topic) >= len(ids) \
                    and await store.db[OUTBOX].count_documents({}) == 0 \
                    and await store.db["outbox_claims"].count_documents({}) == 0:
                break
            await asyncio.sleep(0.1)
    finally:
        done.set()
        writer.cancel()
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    assert kills == 3
    assert await published_ids(settings, topic) == Counter(ids)
    assert await store.db[OUTBOX].count_documents({}) == 0
    assert await store.db["outbox_claims"].count_documents({}) == 0  # settled claims do not linger
    assert log.read_text().count("resumed=True") >= 3, log.read_text()[-3000:]  # each restart resumed


class Monitored:
    """A database client whose every command is recorded as (command, collection): PyMongo command monitoring."""

    def __init__(self, settings: Settings) -> None:
        from pymongo import AsyncMongoClient, monitoring

        self.sent: list[tuple[str, str]] = []
        sent = self.sent

        class Listener(monitoring.CommandListener):
            def started(self, event: monitoring.CommandStartedEvent) -> None:
                name = event.command_name
                target = event.command.get("collection" if name == "getMore" else name)
                sent.append((name, target if isinstance(target, str) else ""))

            def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

            def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

        self.client: Any = AsyncMongoClient(settings.mongo_uri, tz_aware=True, uuidRepresentation="standard",
                                            event_listeners=[Listener()])

    def since(self, start: int, *, leave_out: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        return [c for c in self.sent[start:] if c[0] not in leave_out]


@dataclass
class WatchedRelay:
    watched: Monitored
    """Every command the relay's client sent."""
    store: Store
    writer: Store
    """Another client on the relay's database, to commit events the way an API would."""
    topic: str
    relay: OutboxRelay


@contextlib.asynccontextmanager
async def watched_relay(settings: Settings, *, tail: bool) -> AsyncIterator[WatchedRelay]:
    """A relay on a database of its own, its commands recorded, running, its stream open and settled."""
    from kagi_shared.mongo import make_client

    watched = Monitored(settings)
    store = Store(watched.client, f"test_relay_{uuid.uuid4().hex[:8]}")
    writer = Store(make_client(settings), store.db.name)
    topic = await new_topic(settings)
    quiet = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(
        settings.outbox, change_stream=tail, lease_ttl_s=120.0, watch_await_s=5.0))
    producer = make_producer(settings, "test")
    await producer.start()
    relay = OutboxRelay(store, producer, quiet)
    stop, task = await run_relay(relay)
    try:
        await wait_for(lambda: _true(relay.stream_live))
        await asyncio.sleep(0.5)
        yield WatchedRelay(watched, store, writer, topic, relay)
    finally:
        stop.set()
        await task
        await producer.stop()
        await watched.client.drop_database(store.db.name)
        await watched.client.close()
        await writer.client.close()


async def test_a_trickle_of_events_shares_one_clean_up(settings: Settings) -> None:
    """Events a few hundred milliseconds apart leave the stream quiet after nearly each one: the published rows
    are deleted together once the clean-up is due, not one delete per event, and none is left behind."""
    paced = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(settings.outbox, cleanup_every_s=3.0))
    async with watched_relay(paced, tail=True) as w:
        await w.relay._cleanup()  # the clean-up is due from now on, not at once
        start = len(w.watched.sent)
        ids: list[str] = []
        for _ in range(8):
            ids += await commit_events(w.writer, w.topic, 1)
            await asyncio.sleep(0.35)
        await wait_for(lambda: _true(w.relay.published == 8))
        await wait_for(lambda: _zero(w.store.db[OUTBOX].count_documents({})))
        deletes = [c for c in w.watched.since(start) if c == ("delete", OUTBOX)]
        assert 1 <= len(deletes) <= 2, deletes  # one per event before the clean-up was paced
    assert await published_ids(settings, w.topic) == Counter(ids)


@pytest.mark.parametrize("tail", [False, True], ids=["polling-woken-by-its-watch", "tailing"])
async def test_writes_elsewhere_do_not_cost_an_idle_relays_stream_a_round_trip(settings: Settings, tail: bool) -> None:
    """An awaiting getMore waits out its budget while other databases are written, as on mongod (SecantusDB alone
    answered it at every write in the server: ~100 round trips here), and still brings the relay's own event."""
    async with watched_relay(settings, tail=tail) as w:
        noise = w.writer.client[f"test_noise_{uuid.uuid4().hex[:8]}"]["noise"]  # another database
        try:
            start = len(w.watched.sent)
            ids: list[str] = []
            for i in range(100):
                await noise.insert_one({"_id": i})
                if i == 50:
                    ids = await commit_events(w.writer, w.topic, 1)
                await asyncio.sleep(0.01)
            # Well before the safety poll: the stream reported the event although it came among the noise.
            await wait_for(lambda: _true(w.relay.published == 1), seconds=3.0)
            assert await published_ids(settings, w.topic) == Counter(ids)
            getmores = [c for c in w.watched.since(start) if c[0] == "getMore"]
            # The one parked when the writes began (it returns the event), the next one parked, and one that a
            # budget ending meanwhile may have started: a round trip per write elsewhere would be ~100.
            assert len(getmores) <= 4, getmores
        finally:
            await w.writer.client.drop_database(noise.database.name)


async def test_publishing_one_event_by_polling_costs_four_commands(settings: Settings) -> None:
    """Read it, claim it, delete it, drop the claim: no claims check while none can be open (only this relay,
    holding the lease, writes them), and no second read when the pass found fewer rows than a batch (the watch
    wakes the relay for anything committed after the read)."""
    async with watched_relay(settings, tail=False) as w:
        start = len(w.watched.sent)
        ids = await commit_events(w.writer, w.topic, 1)
        await wait_for(lambda: _true(w.relay.published == 1))
        await asyncio.sleep(1.0)  # what the relay does after publishing, until it sleeps again
        # The stream's getMores and the backlog gauge's sample (every few seconds whatever happens) aside.
        assert w.watched.since(start, leave_out=("getMore", "count")) == [
            ("find", "outbox"), ("insert", "outbox_claims"), ("delete", "outbox"), ("delete", "outbox_claims")]
        assert await published_ids(settings, w.topic) == Counter(ids)


async def test_a_relay_whose_send_failed_settles_its_own_claim_before_sending_again(settings: Settings,
                                                                                   store_factory: Any) -> None:
    """No claims check on every pass, but after a failed batch the same relay (still holding the lease) settles
    its claim before it sends anything again: nothing reaches the topic twice."""
    store: Store = await store_factory("relay")
    topic = await new_topic(settings)
    ids = await commit_events(store, topic, 300)
    small = msgspec.structs.replace(settings, outbox=msgspec.structs.replace(settings.outbox, batch_size=100))
    producer = make_producer(settings, "test")
    await producer.start()
    try:
        relay = OutboxRelay(store, producer, small)
        assert await relay.hold_lease()
        assert await relay.run_once() == 100
        real = relay.outbox
        relay.outbox = CrashAfterSend(real)  # type: ignore[assignment]
        with pytest.raises(ConnectionError):
            await relay.run_once()
        relay.outbox = real
        while await relay.run_once():
            pass
    finally:
        await producer.stop()
    assert await published_ids(settings, topic) == Counter(ids)
    assert await store.db["outbox_claims"].count_documents({}) == 0
