"""Helpers of the permissions integration tests: a company with its admin, the relay, reading grant topics."""

from __future__ import annotations

import uuid
from typing import Any

from kagi_permissions.bootstrap import Permissions, bootstrap, consumers
from kagi_permissions.domain.companies import Admin
from kagi_permissions.domain.requests import PermissionRequest
from kagi_permissions.service.companies import CompanyInput
from kagi_permissions.service.requests import RequestInput
from kagi_shared.events import decode, encode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.inbox import InboxConsumer
from kagi_shared.kafka import ensure_topics, make_producer, read_topic
from kagi_shared.mongo import Store
from kagi_shared.outbox import OutboxRelay
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from kagi_shared.topics import PERMISSIONS_ACKS


def unique(prefix: str = "u") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}@partner-gas.example.jp"


async def service(settings: Settings, store: Store) -> Permissions:
    permissions = bootstrap(settings, store)
    await permissions.start()
    return permissions


async def company_with_admin(permissions: Permissions, roles: list[str] | None = None,
                             contractors: list[str] | None = None,
                             juju_max_users: int | None = None) -> tuple[str, Caller]:
    admin_email = unique("admin")
    company = await permissions.companies.register(CompanyInput(
        name="パートナーガス株式会社", roles=roles or ["gas_retailer", "consignment_requester"],
        primary_admin=Admin(name="託送 太郎", email=admin_email), contractors=contractors or [],
        juju_max_users=juju_max_users))
    caller = Caller(account_id=f"acct-{uuid.uuid4().hex[:6]}", login_id=admin_email, email=admin_email,
                    roles=("company_admin",))
    return company.id, caller


async def with_company(settings: Settings, store_factory: Any) -> tuple[Store, Permissions, str, Caller]:
    """Permissions on a fresh database, started, with one registered company; the company's id and its admin."""
    store = await store_factory("permissions")
    permissions = await service(settings, store)
    company_id, admin = await company_with_admin(permissions)
    return store, permissions, company_id, admin


async def relay_all(settings: Settings, store: Store) -> int:
    await ensure_topics(settings)
    producer = make_producer(settings, "test-permissions")
    await producer.start()
    relay = OutboxRelay(store, producer, settings)
    published = 0
    try:
        assert await relay.hold_lease()
        while sent := await relay.run_once():
            published += sent
    finally:
        await relay.release_lease()
        await relay.close()
        await producer.stop()
    return published


async def commands_on(settings: Settings, system: str, request_ids: set[str]) -> list[tuple[bytes, ev.GrantCommanded]]:
    """(key, command) of every grant command for these requests on ``permissions.grants.<system>``."""
    out = []
    for record in await read_topic(settings, f"permissions.grants.{system.lower()}"):
        _, event = decode(record.value)
        assert isinstance(event, ev.GrantCommanded)
        if event.request_id in request_ids:
            out.append((record.key, event))
    return out


async def ack(settings: Settings, command: ev.GrantCommanded, outcome: str = "applied",
              reason: str | None = None) -> tuple[bytes, bytes]:
    """What a target system sends: published to ``permissions.acks`` and read back from the broker."""
    envelope = new_envelope(ev.GrantAcknowledged(command_id=command.command_id, request_id=command.request_id,
                                                 system=command.system, user_id=command.user_id,
                                                 outcome=outcome, reason=reason),  # type: ignore[arg-type]
                            source=f"target/{command.system.lower()}", subject=command.request_id)
    producer = make_producer(settings, "test-target")
    await producer.start()
    try:
        await producer.send_and_wait("permissions.acks", encode(envelope), key=command.request_id.encode())
    finally:
        await producer.stop()
    for record in await read_topic(settings, "permissions.acks"):
        if decode(record.value)[0].id == envelope.id:
            return record.key or b"", record.value
    raise AssertionError("ack not on the topic")


class DeadLetters:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []

    async def __call__(self, topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        self.sent.append((topic, value))


def data_of(row: dict[str, Any]) -> dict[str, Any]:
    import msgspec

    from tests.support import opened_request

    data = dict(msgspec.json.decode(bytes(row["value"]))["data"])
    return opened_request(data) if "sealed" in data else data


def acks_consumer(permissions: Permissions, settings: Settings) -> InboxConsumer:
    """The worker's consumer of the target systems' acks (its dead letters kept, unread)."""
    return consumers(permissions, DeadLetters(), settings)[PERMISSIONS_ACKS.name]


async def applied(settings: Settings, permissions: Permissions, command: ev.GrantCommanded) -> str:
    """The target system reports ``command`` applied; the outcome of consuming that ack."""
    return await acks_consumer(permissions, settings).process("permissions.acks", *await ack(settings, command))


async def accepted_new_user(permissions: Permissions, admin: Caller, name_kanji: str, name_kana: str,
                            **perms: str) -> tuple[PermissionRequest, PermissionRequest]:
    """A request for a new user holding ``perms``, as filed and as the operator accepted it."""
    filed = await permissions.requests.submit(admin, RequestInput(
        kind="new", user_id=unique(), permissions=perms, name_kanji=name_kanji, name_kana=name_kana))
    return filed, await permissions.requests.accept(filed.id)


async def granted_user(settings: Settings, store: Store, permissions: Permissions, admin: Caller,
                       name_kanji: str = "山田 花子", name_kana: str = "ヤマダ ハナコ", **perms: str) -> str:
    """File, accept, batch and ack every system: the user then holds ``perms``."""
    filed, accepted = await accepted_new_user(permissions, admin, name_kanji, name_kana, **perms)
    await permissions.requests.run_batch(accepted.batch_date)
    await relay_all(settings, store)
    for status in accepted.systems:
        [(_, command)] = await commands_on(settings, status.system, {filed.id})
        await applied(settings, permissions, command)
    assert (await permissions.requests.get(admin, filed.id)).status == "complete"
    return str(filed.user_id)
