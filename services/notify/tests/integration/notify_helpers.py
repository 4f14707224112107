"""Shared by notify's integration tests: an SMTP sink of the test's own, and a notify wired to it."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer

from kagi_local.processes import ProcessManager, ProcessSpec
from kagi_notify.bootstrap import Notify, bootstrap, consumers
from kagi_shared.events import Event, encode, new_envelope
from kagi_shared.inbox import InboxConsumer
from kagi_shared.kafka import ensure_topics, make_producer
from kagi_shared.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sink:
    """An SMTP sink process of this test's own, so it can be stopped and started."""

    def __init__(self, tmp: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.manager = ProcessManager(tmp / "var")
        self.dir = tmp / "mail"
        self.spec = ProcessSpec("smtp-test", [sys.executable, "-m", "kagi_local.smtp_sink", "--port", str(self.port),
                                              "--dir", str(self.dir)], port=self.port)

    def up(self) -> None:
        self.manager.start(self.spec)
        self.manager.wait_ready(self.spec)

    def down(self) -> None:
        self.manager.stop(self.spec.name)

    def __enter__(self) -> Sink:
        """Up for the ``with`` block, down after it, however the block ends."""
        self.up()
        return self

    def __exit__(self, *_: object) -> None:
        self.down()


class Harness:
    def __init__(self, notify: Notify, consumers: dict[str, InboxConsumer], dead: list[tuple[str, bytes]],
                 settings: Settings) -> None:
        self.notify = notify
        self.consumers = consumers
        self.dead = dead
        self.settings = settings

    async def feed(self, topic: str, value: bytes) -> str:
        return await self.consumers[topic].process(topic, None, value)

    async def drain(self, rounds: int = 40) -> None:
        for _ in range(rounds):
            await self.notify.service.dispatch_due()
            await asyncio.sleep(0.06)

    async def deliveries(self) -> list[dict[str, Any]]:
        return list(await self.notify.store.db["deliveries"].find().to_list())

    async def outbox_types(self) -> list[str]:
        rows = await self.notify.store.db["outbox"].find({"topic": "notify.deliveries"}).sort("seq").to_list()
        return [msgspec.json.decode(bytes(r["value"]))["type"] for r in rows]


def local_settings(settings: Settings, smtp_port: int, tmp: Path, **notify: Any) -> Settings:
    """Fast retries; ``notify`` overrides more of the notify settings."""
    return msgspec.structs.replace(
        settings,
        smtp=msgspec.structs.replace(settings.smtp, url=f"smtp://127.0.0.1:{smtp_port}"),
        notify=msgspec.structs.replace(settings.notify, **{"retry_base_s": 0.05, "smtp_timeout_s": 2,
                                                           "sms_dir": str(tmp / "sms"), **notify}),
    )


async def harness(settings: Settings, store: Any, smtp_port: int, tmp: Path, dead_letter: Any = None,
                  **notify: Any) -> Harness:
    local = local_settings(settings, smtp_port, tmp, **notify)
    dead: list[tuple[str, bytes]] = []

    async def record_dead(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        dead.append((topic, value))

    sink = dead_letter or record_dead
    notify = bootstrap(local, store, sink)
    await notify.start()
    return Harness(notify, consumers(notify, sink, local), dead, local)


def event(data: Event, subject: str = "s") -> bytes:
    return encode(new_envelope(data, source="kagi/test", subject=subject))


DeadLetter = Callable[[str, bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]


async def broker_producer(settings: Settings) -> tuple[AIOKafkaProducer, DeadLetter]:
    """A started producer on the test broker (the caller stops it), and a dead-letter callback that publishes
    through it, as the worker's does."""
    await ensure_topics(settings)
    producer = make_producer(settings, "notify-test")
    await producer.start()

    async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    return producer, dead_letter
