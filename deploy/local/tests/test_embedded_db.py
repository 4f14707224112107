"""The embedded database's repairs (``kagi_local.embedded_db``). Retryable-write records: what the server keeps,
replays and evicts is what SecantusDB's own registry does; only the cost of keeping them changed. Awaiting getMore:
a change stream waits out its budget as on mongod, through the server the project starts. Abandoned transactions:
a server of its own with a short transaction lifetime, and a client process killed inside a transaction."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring
from secantus import transactions
from secantus.server import SecantusDBServer

from kagi_local.embedded_db import repair
from kagi_shared.settings import Settings

LIFETIME = transactions._RETRYABLE_RECORD_LIFETIME_SECONDS
CAP = transactions._RETRYABLE_RECORD_MAX
REPLY = {"ok": 1.0, "n": 1}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry(clock: Clock) -> Any:
    repair()
    return transactions.TransactionRegistry(time_func=clock)


def write(registry: Any, session: int, number: int = 1) -> None:
    registry.record_retryable(b"s%d" % session, number, b"cmd", REPLY)


def replayed(registry: Any, session: int, number: int = 1) -> bool:
    return registry.retryable_reply(b"s%d" % session, number, b"cmd") is not None


def test_a_retried_write_is_answered_from_its_record_and_another_command_is_not(registry: Any) -> None:
    write(registry, 1)
    assert replayed(registry, 1)
    assert registry.retryable_reply(b"s1", 1, b"another command") is None
    assert not replayed(registry, 1, number=2)


def test_a_record_expires_after_its_lifetime(registry: Any, clock: Clock) -> None:
    write(registry, 1)
    clock.now += LIFETIME - 1
    write(registry, 2)
    assert replayed(registry, 1)
    clock.now += 2
    assert not replayed(registry, 1)
    assert replayed(registry, 2)


def test_over_the_cap_the_oldest_records_go_first(registry: Any, clock: Clock) -> None:
    for session in range(CAP + 5):
        clock.now += 0.001
        write(registry, session)
    assert len(registry._retryable) == CAP
    assert not any(replayed(registry, session) for session in range(5))
    assert replayed(registry, 5) and replayed(registry, CAP + 4)


def test_a_record_written_again_counts_from_its_last_write(registry: Any, clock: Clock) -> None:
    write(registry, 1)
    write(registry, 2)
    clock.now += LIFETIME - 1
    write(registry, 1)  # the same retry recorded again, later
    clock.now += 2
    assert replayed(registry, 1)
    assert not replayed(registry, 2)


class NoWalk(OrderedDict[Any, Any]):
    """Records that refuse to be walked whole: SecantusDB's own prune lists them all on every write."""

    def items(self) -> Any:
        raise AssertionError("a write walked every retryable-write record")


def test_a_write_with_the_cap_full_does_not_walk_every_record(registry: Any, clock: Clock) -> None:
    for session in range(CAP):
        write(registry, session)
    registry._retryable = NoWalk(registry._retryable)
    clock.now += 1
    for session in range(CAP, CAP + 100):
        write(registry, session)
        assert replayed(registry, session)
    assert len(registry._retryable) == CAP
    assert not replayed(registry, 0)


class GetMores(monitoring.CommandListener):
    def __init__(self) -> None:
        self.count = 0

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "getMore":
            self.count += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.mark.integration
async def test_a_change_stream_waits_out_writes_elsewhere_and_answers_its_own_at_once(settings: Settings) -> None:
    get_mores = GetMores()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, event_listeners=[get_mores])
    db = client[f"test_getmore_{uuid.uuid4().hex[:8]}"]
    try:
        await db.create_collection("watched")
        # A budget far longer than the test may take: an insert that waited for it would fail the wait_for below.
        stream = await db.watched.watch(max_await_time_ms=60_000)
        first = asyncio.create_task(anext(stream))
        await asyncio.sleep(0.3)  # the first getMore is waiting at the server
        for n in range(6):
            await db.elsewhere.insert_one({"n": n})
            await asyncio.sleep(0.1)
        await db.watched.insert_one({"_id": "mine"})
        change = await asyncio.wait_for(first, 20)
        assert change["documentKey"] == {"_id": "mine"}
        # SecantusDB alone answers a waiting getMore at every write in the server: seven getMores here, not one.
        assert get_mores.count <= 2
        await stream.close()
    finally:
        await client.drop_database(db.name)
        await client.close()


DIES_INSIDE_A_TRANSACTION = """
import os, sys
from pymongo import MongoClient
client = MongoClient(sys.argv[1])
session = client.start_session()
session.start_transaction()
client.kagi.held.update_one({"_id": 1}, {"$set": {"by": "the killed process"}}, session=session)
os._exit(0)  # no commit, no abort, no endSessions: the process is gone
"""


@pytest.fixture
def short_lived_transactions(tmp_path: Path) -> Iterator[SecantusDBServer]:
    """A server of its own whose transactions live 2 s (mongod's ``transactionLifetimeLimitSeconds``, lowered)."""
    repair()
    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=str(tmp_path / "db"),
                              transaction_lifetime_seconds=2.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.mark.integration
async def test_a_write_behind_a_killed_clients_transaction_goes_through_once_the_transaction_expires(
        short_lived_transactions: SecantusDBServer) -> None:
    uri = f"mongodb://127.0.0.1:{short_lived_transactions.port}/?directConnection=true"
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(uri)
    try:
        held = client.kagi.held
        await held.insert_one({"_id": 1, "by": "nobody"})
        process = await asyncio.create_subprocess_exec(sys.executable, "-c", DIES_INSIDE_A_TRANSACTION, uri)
        assert await asyncio.wait_for(process.wait(), 60) == 0
        # The killed process's write holds the document until the server aborts its transaction. SecantusDB alone
        # aborts it only when another transaction comes by, and none will here: without the repair this waits for
        # ever, with it about the lifetime plus half of it.
        await asyncio.wait_for(held.update_one({"_id": 1}, {"$set": {"by": "the survivor"}}), 30)
        assert await held.find_one({"_id": 1}) == {"_id": 1, "by": "the survivor"}
    finally:
        await client.close()
