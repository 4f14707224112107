"""Notify against the real database and a real SMTP sink: one mail per event, retries across an outage."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import msgspec
from notify_helpers import Sink, free_port

from kagi_cli.mailbox import mailbox
from kagi_notify.bootstrap import bootstrap
from kagi_shared.events import new_envelope
from kagi_shared.events import notify as ev
from kagi_shared.inbox import InboxConsumer
from kagi_shared.settings import DEV_SECRETS, Settings


def request(recipient: str, code: str = "ABCD2345EFGH") -> bytes:
    from kagi_shared.events import encode

    return encode(new_envelope(ev.sealed_request(DEV_SECRETS["notify_key"], ev.Notice(
        template="step_up_code", channel="mail", recipient=recipient, category="security",
        variables={"code": code, "expires_at": "2026年11月21日 12時00分まで"})), source="kagi/test", subject=recipient))


async def started(settings: Settings, store_factory: Any, port: int) -> tuple[Any, InboxConsumer]:
    """Notify on a fresh database, started, mailing to ``port``; with its request consumer."""
    notify, consumer, _ = notify_for(settings, await store_factory("notify"), port)
    await notify.start()
    return notify, consumer


def notify_for(settings: Settings, store: Any, port: int) -> Any:
    local = msgspec.structs.replace(
        settings,
        smtp=msgspec.structs.replace(settings.smtp, url=f"smtp://127.0.0.1:{port}"),
        notify=msgspec.structs.replace(settings.notify, retry_base_s=0.05, smtp_timeout_s=2),
    )
    dead: list[tuple[str, bytes]] = []

    async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        dead.append((topic, value))

    notify = bootstrap(local, store, dead_letter)
    consumer = InboxConsumer("notify", store, {ev.NotificationRequested: notify.service.on_request},
                             dead_letter, local)
    return notify, consumer, dead


async def drain(notify: Any, rounds: int = 40) -> None:
    import asyncio

    for _ in range(rounds):
        await notify.service.dispatch_due()
        await asyncio.sleep(0.06)


async def test_the_same_events_twice_make_one_mail_each(settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    with Sink(tmp_path, free_port()) as sink:
        notify, consumer = await started(settings, store_factory, sink.port)
        recipients = [f"r{i}-{uuid.uuid4().hex[:6]}@example.jp" for i in range(5)]
        events = [request(r) for r in recipients]
        outcomes = [await consumer.process("notify.requests", None, e) for e in events + events]
        await drain(notify, 5)
    assert outcomes.count("handled") == 5 and outcomes.count("duplicate") == 5
    assert sorted(m.to for m in mailbox(sink.dir)) == sorted(recipients)


async def test_one_recipients_mails_leave_in_the_order_they_were_asked_for(settings: Settings, store_factory: Any,
                                                                          tmp_path: Path) -> None:
    """The seed's enrolment pair (guide, then one-time password) must not arrive the wrong way round."""
    with Sink(tmp_path, free_port()) as sink:
        notify, consumer = await started(settings, store_factory, sink.port)
        person = f"pair-{uuid.uuid4().hex[:6]}@example.jp"
        others = [f"o{i}-{uuid.uuid4().hex[:6]}@example.jp" for i in range(4)]
        codes = [f"ORDER{i}ABCDEF"[:12] for i in range(6)]
        for index, code in enumerate(codes):  # interleaved with other people's mails, all in one dispatch batch
            await consumer.process("notify.requests", None, request(person, code))
            if index < len(others):
                await consumer.process("notify.requests", None, request(others[index]))
        await drain(notify, 5)
    mine = [m for m in mailbox(sink.dir) if m.to == person]
    assert [next(c for c in codes if c in m.body) for m in mine] == codes
    assert len(mailbox(sink.dir)) == len(codes) + len(others)


async def test_smtp_down_then_up_delivers_everything_once(settings: Settings, store_factory: Any,
                                                          tmp_path: Path) -> None:
    sink = Sink(tmp_path, free_port())
    store = await store_factory("notify")
    notify, consumer, dead = notify_for(settings, store, sink.spec.port or 0)
    await notify.start()
    recipients = [f"down{i}@example.jp" for i in range(4)]
    for r in recipients:
        await consumer.process("notify.requests", None, request(r))

    await notify.service.dispatch_due()  # the server is down: every delivery waits for it, no attempt spent
    waiting = await store.db["deliveries"].find().to_list()
    assert {(d["status"], d["attempts"]) for d in waiting} == {("queued", 0)}
    assert all("waiting for the mail server" in d["last_error"] and "connect" in d["last_error"].lower()
               for d in waiting)

    sink.up()
    try:
        await drain(notify)
    finally:
        sink.down()
    assert sorted(m.to for m in mailbox(sink.dir)) == sorted(recipients)
    sent = await store.db["deliveries"].find().to_list()
    assert {d["status"] for d in sent} == {"sent"}
    assert all(d["attempts"] == 1 for d in sent)
    assert all(d["variables"]["code"] == "***" for d in sent)  # the one-time code is not kept at rest
    assert dead == []


async def test_bad_address_is_a_dead_delivery_with_the_reason(settings: Settings, store_factory: Any,
                                                              tmp_path: Path) -> None:
    store = await store_factory("notify")
    notify, consumer, dead = notify_for(settings, store, free_port())
    await notify.start()
    await consumer.process("notify.requests", None, request("not an address"))
    await notify.service.dispatch_due()
    [delivery] = await store.db["deliveries"].find().to_list()
    assert delivery["status"] == "dead"
    assert "invalid mail address" in delivery["last_error"]
    assert [topic for topic, _ in dead] == ["notify.requests.dlt"]
    assert b"ABCD2345EFGH" not in dead[0][1]
    outbox = await store.db["outbox"].find({"topic": "notify.deliveries"}).to_list()
    assert [msgspec.json.decode(bytes(r["value"]))["type"] for r in outbox] == ["kagi.notify.notification_failed"]
