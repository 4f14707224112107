"""What a batch run and a batch of acks cost the database, counted with PyMongo's command monitoring.

On the embedded database every command is served one at a time, and a sort is done without an index (every
matching document read and sorted), so these bound the commands of the hot paths and keep sorts off them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from permissions_helpers import acks_consumer, company_with_admin, service, unique
from pymongo import AsyncMongoClient, monitoring

from kagi_permissions.bootstrap import Permissions
from kagi_permissions.service.requests import RequestInput
from kagi_shared.events import decode, encode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.inbox import Message
from kagi_shared.mongo import OUTBOX, Store
from kagi_shared.settings import Settings


class Commands(monitoring.CommandListener):
    """The commands sent while ``on``: name, collection and the command itself."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[tuple[str, str, dict[str, Any]]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.on:
            target = event.command.get("collection" if event.command_name == "getMore" else event.command_name)
            self.seen.append((event.command_name, target if isinstance(target, str) else "", dict(event.command)))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

    def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    def of(self, name: str, collection: str) -> list[dict[str, Any]]:
        return [c for n, coll, c in self.seen if n == name and coll == collection]


@pytest.fixture
async def counted(settings: Settings) -> AsyncIterator[tuple[Commands, Store]]:
    commands = Commands()
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, event_listeners=[commands], tz_aware=True,
                                                     uuidRepresentation="standard")
    store = Store(client, f"test_costs_{uuid.uuid4().hex[:8]}")
    try:
        yield commands, store
    finally:
        await client.drop_database(store.db.name)
        await client.close()


async def accepted_requests(settings: Settings, store: Store, count: int) -> tuple[Permissions, list[str], date]:
    """Permissions on ``store`` with ``count`` accepted new-user requests (TAXIS, and INFOSITE with it): the
    service, the requests' ids in filing order and their batch date."""
    permissions = await service(settings, store)
    _, admin = await company_with_admin(permissions)
    ids = []
    for _ in range(count):
        filed = await permissions.requests.submit(admin, RequestInput(
            kind="new", user_id=unique(), permissions={"TAXIS": "1010"}, name_kanji="山田 花子",
            name_kana="ヤマダ ハナコ"))
        accepted = await permissions.requests.accept(filed.id)
        ids.append(filed.id)
    assert accepted.batch_date is not None
    return permissions, ids, accepted.batch_date


async def test_a_batch_run_reads_the_due_requests_without_a_sort_and_once_per_chunk(
        settings: Settings, counted: tuple[Commands, Store]) -> None:
    commands, store = counted
    permissions, filed, batch = await accepted_requests(settings, store, 7)

    commands.on = True
    result = await permissions.requests.run_batch(batch, chunk=2)
    commands.on = False

    assert (result.requests, result.commands) == (7, 14)  # TAXIS and INFOSITE each
    finds = commands.of("find", "requests")
    # A sorted read of the due requests per chunk read and sorted every accepted request each time.
    assert [c for c in finds if c.get("sort")] == []
    assert len(finds) <= 4 + 2, finds  # the 4 chunks' reads, the due ids, the check that none are left
    assert len(commands.of("commitTransaction", "")) == 4
    sent = [doc["key"] async for doc in store.db[OUTBOX].find({"topic": "permissions.grants.taxis"}).sort("seq")]
    users = {r.user_key: r.id for r in [await permissions.repo.request(i) for i in filed] if r is not None}
    assert [users[key] for key in sent] == filed  # in filing order


async def test_a_batch_of_200_acks_costs_a_fixed_handful_of_commands(
        settings: Settings, counted: tuple[Commands, Store]) -> None:
    commands, store = counted
    permissions, filed, batch = await accepted_requests(settings, store, 200)
    await permissions.requests.run_batch(batch)
    acks: dict[str, list[Message]] = {"TAXIS": [], "INFOSITE": []}
    async for row in store.db[OUTBOX].find({"topic": {"$regex": "^permissions.grants"}}).sort("seq"):
        _, command = decode(bytes(row["value"]))
        assert isinstance(command, ev.GrantCommanded)
        if command.request_id not in filed:  # the company admin's permission-management right
            continue
        envelope = new_envelope(ev.GrantAcknowledged(
            command_id=command.command_id, request_id=command.request_id, system=command.system,
            user_id=command.user_id, outcome="applied"), source="target", subject=command.request_id)
        acks[command.system].append(Message("permissions.acks", command.request_id.encode(), encode(envelope)))
    consumer = acks_consumer(permissions, settings)

    # As the target systems answer: one system's 200 acks, then the other's (the users then hold a grant).
    for system in ("TAXIS", "INFOSITE"):
        commands.seen.clear()
        commands.on = True
        outcomes = await consumer.process_many(acks[system])
        commands.on = False
        assert outcomes == ["handled"] * 200
        sent = [(name, collection) for name, collection, _ in commands.seen]
        # The inbox check, the inbox rows, the requests and the grants read, the grant and request writes, the
        # events, the commit; 200 documents in one reply each (a getMore per read of more than 101 before).
        assert len(sent) <= 9, sent
        assert ("getMore", "requests") not in sent and ("getMore", "grants") not in sent, sent
        assert [c for name, _, c in commands.seen if name == "find" and c.get("sort")] == []
    assert await store.db["requests"].count_documents({"_id": {"$in": filed}, "status": "complete"}) == 200
    assert await consumer.process_many(acks["TAXIS"]) == ["duplicate"] * 200
