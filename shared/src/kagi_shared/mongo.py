"""The AsyncMongoClient factory and the transaction helper every service writes through.

A write and the events it causes commit together: handlers get a ``Tx`` whose
``publish`` adds outbox rows that are inserted in the same transaction.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol, TypeVar

import msgspec
from bson import Binary
from pymongo import AsyncMongoClient, IndexModel, monitoring
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from kagi_shared import idempotency, metrics, quiet_pymongo
from kagi_shared.events.envelope import Envelope, encode
from kagi_shared.settings import Settings

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)
Doc = dict[str, Any]

OUTBOX = "outbox"


class CommandCounter(monitoring.CommandListener):
    """Counts every command a client sends in ``kagi_db_commands_total`` by command and collection: what a request
    costs the database, per process. It runs on every command, so it keeps the counter's series in a dict of
    dicts (no tuple, no lock, no label validation once a series exists)."""

    def __init__(self) -> None:
        self.service = metrics.process
        self.series: dict[str, dict[str, Any]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        name = event.command_name
        # The collection is the command's first value (``{"find": "accounts", …}``); getMore names it apart, and
        # a database-wide command has a number there (``{"ping": 1}``, ``{"commitTransaction": 1}``).
        target = event.command.get("collection" if name == "getMore" else name)
        collection = target if type(target) is str else ""
        if self.service is not metrics.process:  # named after the client was made (a worker's store)
            self.service, self.series = metrics.process, {}
        by_collection = self.series.get(name)
        if by_collection is None:
            by_collection = self.series[name] = {}
        counter = by_collection.get(collection)
        if counter is None:
            counter = by_collection[collection] = metrics.DB_COMMANDS.labels(self.service, name, collection)
        counter.inc()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = CommandCounter()
"""One listener for every client of the process."""


def make_client(settings: Settings) -> AsyncMongoClient[Doc]:
    quiet_pymongo.install()
    return AsyncMongoClient(
        settings.mongo_uri,
        maxPoolSize=settings.mongo.max_pool_size,
        serverSelectionTimeoutMS=settings.mongo.server_selection_timeout_ms,
        serverMonitoringMode=settings.mongo.server_monitoring_mode,
        tz_aware=True,
        uuidRepresentation="standard",
        event_listeners=[COMMANDS],
    )


def database_name(settings: Settings, service: str) -> str:
    return f"{settings.mongo.db_prefix}_{service}"


_last_seq = 0


def next_seq() -> int:
    """Commit-order key for outbox rows: wall-clock nanoseconds, made strictly increasing per process."""
    global _last_seq
    _last_seq = max(_last_seq + 1, time.time_ns())
    return _last_seq


def struct_doc(value: msgspec.Struct) -> Doc:
    """A struct as a document: its ``id`` becomes ``_id``."""
    doc = msgspec.structs.asdict(value)
    doc["_id"] = doc.pop("id")
    return doc


def doc_struct(doc: Doc, cls: type[S]) -> S:
    """The struct stored by ``struct_doc``."""
    fields = dict(doc)
    fields["id"] = fields.pop("_id")
    return msgspec.convert(fields, cls)


def outbox_row(topic: str, envelope: Envelope) -> Doc:
    return {
        "_id": envelope.id,
        "topic": topic,
        "key": envelope.subject,
        "type": envelope.type,
        "value": Binary(encode(envelope)),
        "traceparent": envelope.traceparent,
        "seq": next_seq(),
        "created_at": datetime.now(UTC),
    }


class Tx:
    """One transaction: repositories pass ``session``; ``publish`` queues outbox rows."""

    def __init__(self, session: AsyncClientSession, db: AsyncDatabase[Doc]) -> None:
        self.session = session
        self.db = db
        self.outbox: list[Doc] = []
        self.committed: list[Callable[[], None]] = []

    def publish(self, topic: str, envelope: Envelope) -> None:
        self.outbox.append(outbox_row(topic, envelope))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the transaction has committed (never for an attempt that was rolled back): a wake-up
        sent earlier would let the woken task look before the rows it should find are visible."""
        self.committed.append(fn)


class Transactions(Protocol):
    """What a use case needs to write atomically: ``Store`` and ``kagi_shared.memory.MemoryTransactions``."""

    async def transaction(self, fn: Callable[[Tx], Awaitable[T]]) -> T: ...


class HasIndexes(Protocol):
    async def ensure_indexes(self) -> None: ...


class Store:
    """A service's database plus the helper that runs a function in one transaction."""

    def __init__(self, client: AsyncMongoClient[Doc], db_name: str) -> None:
        self.client = client
        self.db: AsyncDatabase[Doc] = client[db_name]

    @classmethod
    def of(cls, settings: Settings, service: str) -> Store:
        """``service``'s own database, on a client of its own."""
        return cls(make_client(settings), database_name(settings, service))

    async def transaction(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        """Run ``fn`` and commit its writes with its outbox rows; retried on transient errors."""

        attempts: list[Tx] = []

        async def callback(session: AsyncClientSession) -> T:
            tx = Tx(session, self.db)
            attempts.append(tx)
            result = await fn(tx)
            if tx.outbox:
                await self.db[OUTBOX].insert_many(tx.outbox, session=session)
            claim = idempotency.CLAIM.get()
            if claim is not None and claim.database == self.db.name:
                # With the work it guards: once this commits, the key is never released for a second run; and its
                # lease shortens to the moment it takes to store the answer.
                answer_by = datetime.now(UTC) + idempotency.ANSWER_LEASE
                await self.db[idempotency.COLLECTION].update_one(
                    {"_id": claim.id}, {"$set": {"state": "committed", "lease_until": answer_by}}, session=session)
                tx.after_commit(claim.mark_committed)
            return result

        async with self.client.start_session() as session:
            result = await session.with_transaction(callback)
        for hook in attempts[-1].committed:  # the attempt that committed is the last one
            hook()
        return result

    async def ensure_outbox_indexes(self) -> None:
        await self.db[OUTBOX].create_index([("seq", 1)])
        # The stored answers of Idempotency-Key requests leave after their 24 hours (kagi_shared.idempotency).
        await self.db[idempotency.COLLECTION].create_index([("expires_at", 1)], expireAfterSeconds=0)

    async def ensure_indexes(self, *repositories: HasIndexes) -> None:
        """Create the indexes the service's repositories declare, and the outbox's (a service's start)."""
        for repository in repositories:
            await repository.ensure_indexes()
        await self.ensure_outbox_indexes()

    async def ping(self) -> None:
        await self.client.admin.command("ping")


@dataclass
class ServiceRoot:
    """What a service's ``bootstrap.py`` builds (its subclass adds the repositories and use cases): the store
    comes first, and closing the service closes the store's client."""

    store: Store

    async def close(self) -> None:
        await self.store.client.close()


class CollectionRepository:
    """A repository over one collection: the subclass names the collection and declares its indexes, so a
    collection's indexes are read beside its name; the service creates them at start (``ensure_indexes``)."""

    COLLECTION: ClassVar[str]
    INDEXES: ClassVar[tuple[IndexModel, ...]] = ()

    def __init__(self, store: Store) -> None:
        self.collection: AsyncCollection[Doc] = store.db[self.COLLECTION]

    async def ensure_indexes(self) -> None:
        for index in self.INDEXES:  # one command per index, as ``create_index`` sends
            await self.collection.create_indexes([index])


class InsertWatch:
    """Sets ``wake`` on every insert into ``collection``, from its change stream: a loop that finds its work in
    that collection sleeps until there is some instead of polling for it.

    Each getMore waits at the server for up to ``await_s``, so an idle watch costs one request per that (the
    embedded database too, with ``kagi_local.embedded_db``'s repair). ``wake`` is also set whenever the stream
    (re)opens, for inserts made while it was closed. ``live`` says whether the stream is open; a loop keeps polling
    (less often) while it is not, e.g. on a database without change streams.
    """

    def __init__(self, collection: AsyncCollection[Doc], wake: asyncio.Event, await_s: float) -> None:
        self.collection = collection
        self.wake = wake
        self.await_ms = int(await_s * 1000)
        self.live = False

    async def run(self, retry_s: float = 5.0) -> None:
        from kagi_shared.logging import get_logger

        while True:
            try:
                async with await self.collection.watch([{"$match": {"operationType": "insert"}}],
                                                       max_await_time_ms=self.await_ms) as stream:
                    self.live = True
                    self.wake.set()
                    async for _ in stream:
                        self.wake.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the caller's poll keeps it correct without the stream
                get_logger(__name__).warning("mongo.watch_failed", collection=self.collection.name, error=str(exc))
            finally:
                self.live = False
            await asyncio.sleep(retry_s)
