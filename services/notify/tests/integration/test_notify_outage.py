"""SMTP trouble against the real database, broker and SMTP servers.

A server that is down (or answers 421) for far longer than a delivery's whole attempt budget costs
no attempts: everything goes out once it is back, nothing twice, nothing dead. A server that refuses
one recipient for now (451) costs that delivery its attempts: dead after N, on the DLT, and announced.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer
from aiosmtpd.smtp import SMTP, Envelope, Session
from notify_helpers import Harness, Sink, broker_producer, event, free_port, harness
from prometheus_client import REGISTRY

from kagi_cli.mailbox import mailbox
from kagi_shared.events import notify as ev
from kagi_shared.settings import DEV_SECRETS, Settings
from tests.support import read_from_now_on

DLT = "notify.requests.dlt"
# A budget of 3 attempts 0.05 s apart is spent in ~0.15 s; the outages below last seconds.
BUDGET = {"max_attempts": 3, "retry_base_s": 0.05, "outage_retry_cap_s": 0.4, "dispatch_poll_s": 0.05}


def request(recipient: str) -> bytes:
    return event(ev.sealed_request(DEV_SECRETS["notify_key"], ev.Notice(
        template="step_up_code", channel="mail", recipient=recipient, category="security",
        variables={"code": "ABCD2345EFGH", "expires_at": "2026年11月22日 12時00分まで"})), subject=recipient)


def unavailable_gauge() -> float | None:
    return REGISTRY.get_sample_value("kagi_notify_server_unavailable", {"channel": "mail"})


@asynccontextmanager
async def dispatcher(h: Harness) -> AsyncIterator[None]:
    """The worker's own dispatch loop, running for the block."""
    stop = asyncio.Event()
    task = asyncio.create_task(h.notify.service.run_dispatcher(stop))
    try:
        yield
    finally:
        stop.set()
        h.notify.service.wake.set()
        await asyncio.wait_for(task, 10)


async def until(check: Callable[[], Awaitable[bool]], timeout_s: float = 15.0) -> None:
    for _ in range(int(timeout_s / 0.1)):
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("not reached in time")


class Refusing:
    """An SMTP server's handler that answers ``reply`` to RCPT for the recipients ``refuse`` picks."""

    def __init__(self, reply: str, refuse: Callable[[str], bool]) -> None:
        self.reply = reply
        self.refuse = refuse
        self.rcpts: list[str] = []
        self.mails: list[tuple[list[str], bytes]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          rcpt_options: list[str]) -> str:
        self.rcpts.append(address)
        if self.refuse(address):
            return self.reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.mails.append((list(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 Message accepted for delivery"


@asynccontextmanager
async def smtp_server(handler: Refusing) -> AsyncIterator[int]:
    """A real aiosmtpd server in this test's event loop."""
    port = free_port()
    server = await asyncio.get_running_loop().create_server(lambda: SMTP(handler, hostname="refusing"),
                                                            "127.0.0.1", port)
    try:
        yield port
    finally:
        server.close()
        await server.wait_closed()


async def test_an_outage_far_longer_than_the_attempt_budget_delivers_everything_once(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    dead: list[str] = []

    async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        dead.append(topic)

    sink = Sink(tmp_path)  # down for now
    h = await harness(settings, await store_factory("notify"), sink.port, tmp_path, dead_letter, **BUDGET)
    recipients = [f"outage{i}-{uuid.uuid4().hex[:6]}@example.jp" for i in range(6)]
    requests = [request(r) for r in recipients]
    async with dispatcher(h):
        for value in requests[:4]:
            assert await h.feed("notify.requests", value) == "handled"
        await asyncio.sleep(1.5)
        for value in requests[4:]:  # asked for while the server is down
            assert await h.feed("notify.requests", value) == "handled"
        await asyncio.sleep(1.5)

        outage = h.notify.service.outages["mail"]
        assert outage.down and outage.probes >= 5  # probed again and again, long past the budget
        assert unavailable_gauge() == 1
        waiting = await h.deliveries()
        assert {(d["status"], d["attempts"]) for d in waiting} == {("queued", 0)}  # no attempt spent
        assert all("waiting for the mail server" in d["last_error"] for d in waiting if d["last_error"])

        sink.up()
        try:
            async def all_sent() -> bool:
                return {d["status"] for d in await h.deliveries()} == {"sent"}

            await until(all_sent)
            for value in requests:  # the same events again, once the mails went out
                assert await h.feed("notify.requests", value) == "duplicate"
            await asyncio.sleep(0.5)
        finally:
            sink.down()
    assert sorted(m.to for m in mailbox(sink.dir)) == sorted(recipients)  # each exactly once
    assert {(d["status"], d["attempts"]) for d in await h.deliveries()} == {("sent", 1)}
    assert dead == []
    assert await h.outbox_types() == ["kagi.notify.notification_delivered"] * len(recipients)
    assert not h.notify.service.outages["mail"].down
    assert unavailable_gauge() == 0


async def test_421_service_not_available_holds_mail_without_spending_attempts(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    handler = Refusing("421 4.3.2 Service not available, closing transmission channel", lambda _: True)
    async with smtp_server(handler) as port:
        h = await harness(settings, await store_factory("notify"), port, tmp_path, **BUDGET)
        recipients = [f"busy{i}@example.jp" for i in range(3)]
        async with dispatcher(h):
            for r in recipients:
                await h.feed("notify.requests", request(r))
            async def tried_past_the_budget() -> bool:
                return len(handler.rcpts) >= 8

            await until(tried_past_the_budget)
            held = await h.deliveries()
            assert {(d["status"], d["attempts"]) for d in held} == {("queued", 0)}
            assert any("421" in (d["last_error"] or "") for d in held)

            handler.refuse = lambda _: False

            async def all_sent() -> bool:
                return {d["status"] for d in await h.deliveries()} == {"sent"}

            await until(all_sent)
    assert sorted(to for tos, _ in handler.mails for to in tos) == sorted(recipients)
    assert {(d["status"], d["attempts"]) for d in await h.deliveries()} == {("sent", 1)}
    assert h.dead == []


async def test_a_recipient_refused_for_now_is_dead_after_its_attempts_on_the_dlt_and_announced(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    producer, dead_letter = await broker_producer(settings)

    kafka = AIOKafkaConsumer(DLT, bootstrap_servers=settings.kafka_bootstrap, group_id=f"t-{uuid.uuid4().hex}",
                             auto_offset_reset="latest", enable_auto_commit=False,
                             fetch_max_wait_ms=settings.kafka.fetch_max_wait_ms)
    await kafka.start()
    handler = Refusing("451 4.3.0 try later", lambda address: address.startswith("later-"))
    try:
        await read_from_now_on(kafka)

        later, fine = f"later-{uuid.uuid4().hex[:8]}@example.jp", f"fine-{uuid.uuid4().hex[:8]}@example.jp"
        async with smtp_server(handler) as port:
            h = await harness(settings, await store_factory("notify"), port, tmp_path, dead_letter, **BUDGET)
            async with dispatcher(h):
                await h.feed("notify.requests", request(later))
                await h.feed("notify.requests", request(fine))

                async def settled() -> bool:
                    return {d["status"] for d in await h.deliveries()} == {"dead", "sent"}

                await until(settled)

        by_recipient = {d["recipient"]: d for d in await h.deliveries()}
        assert (by_recipient[later]["status"], by_recipient[later]["attempts"]) == ("dead", 3)
        assert "451" in by_recipient[later]["last_error"] and "try later" in by_recipient[later]["last_error"]
        assert (by_recipient[fine]["status"], by_recipient[fine]["attempts"]) == ("sent", 1)
        assert handler.rcpts.count(later) == 3  # the server was asked each time
        assert [tos for tos, _ in handler.mails] == [[fine]]
        assert not h.notify.service.outages["mail"].down  # the server answered: never an outage

        rows = await h.notify.store.db["outbox"].find({"topic": "notify.deliveries"}).sort("seq").to_list()
        announced = {(e["type"], e["data"]["recipient"]) for e in (msgspec.json.decode(bytes(r["value"]))
                                                                      for r in rows)}
        assert announced == {("kagi.notify.notification_failed", later),
                             ("kagi.notify.notification_delivered", fine)}
        failed = next(msgspec.json.decode(bytes(r["value"]))["data"] for r in rows
                      if b"notification_failed" in bytes(r["value"]))
        assert failed["attempts"] == 3 and "451" in failed["reason"]

        found: list[Any] = []
        for _ in range(50):
            for messages in (await kafka.getmany(timeout_ms=200)).values():
                found += [m for m in messages if m.key == later.encode()]
            if found:
                break
        [dlt] = found
        assert msgspec.json.decode(dlt.value)["deliveryId"] == by_recipient[later]["_id"]
        assert b"ABCD2345EFGH" not in dlt.value
        headers = dict(dlt.headers)
        assert b"451" in headers["dlt_error"] and headers["dlt_consumer"] == b"notify.dispatcher"
    finally:
        await kafka.stop()
        await producer.stop()
