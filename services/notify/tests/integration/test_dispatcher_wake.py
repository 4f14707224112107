"""An idle dispatcher sleeps until a delivery is recorded, by its own process or another (the notify API)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from notify_helpers import Sink, harness

from kagi_cli.mailbox import mailbox
from kagi_shared.mongo import Tx
from kagi_shared.settings import Settings


async def record_and_wait_for_mail(api: Any, store: Any, sink: Sink, recipient: str) -> None:
    """The notify API process records a code mail in its own transaction; the sink must get it within 10 s."""
    async def work(tx: Tx) -> None:
        await api.notify.service.record(
            tx, template="step_up_code", channel="mail", recipient=recipient, category="security",
            variables={"code": "ABCD2345EFGH", "expires_at": "2026年11月22日 12時00分まで"})

    await store.transaction(work)
    for _ in range(100):
        if any(m.to == recipient for m in mailbox(sink.dir)):
            break
        await asyncio.sleep(0.1)
    assert [m.to for m in mailbox(sink.dir)] == [recipient]


async def test_a_delivery_recorded_by_another_process_is_sent_without_waiting_for_a_poll(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    sink = Sink(tmp_path)
    sink.up()
    store = await store_factory("notify")
    # Polls alone would find the delivery only after a minute.
    worker = await harness(settings, store, sink.port, tmp_path, dispatch_poll_s=60.0, dispatch_idle_max_s=60.0)
    api = await harness(settings, store, sink.port, tmp_path)  # the API process: same database, its own service
    stop = asyncio.Event()
    task = asyncio.create_task(worker.notify.service.run_dispatcher(stop))
    recipient = f"wake-{uuid.uuid4().hex[:6]}@example.jp"
    try:
        await asyncio.sleep(1.5)  # idle, its change stream open

        await record_and_wait_for_mail(api, store, sink, recipient)
    finally:
        stop.set()
        worker.notify.service.wake.set()
        await asyncio.wait_for(task, 10)
        sink.down()


async def test_a_delivery_costs_the_dispatcher_no_second_look_for_due_ones(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    """With the change stream open, a pass that found fewer due deliveries than it may take is not followed by
    another look: anything recorded since wakes the dispatcher (its stream, or its own process's commit)."""
    from pymongo import AsyncMongoClient, monitoring

    from kagi_shared.mongo import Store

    reads: list[str] = []

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            if event.command.get(event.command_name) == "deliveries":
                reads.append(event.command_name)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None: ...

        def failed(self, event: monitoring.CommandFailedEvent) -> None: ...

    sink = Sink(tmp_path)
    sink.up()
    api_store = await store_factory("notify")
    client: AsyncMongoClient[Any] = AsyncMongoClient(settings.mongo_uri, tz_aware=True,
                                                     uuidRepresentation="standard", event_listeners=[Listener()])
    worker = await harness(settings, Store(client, api_store.db.name), sink.port, tmp_path,
                           dispatch_poll_s=60.0, dispatch_idle_max_s=60.0)
    api = await harness(settings, api_store, sink.port, tmp_path)
    stop = asyncio.Event()
    task = asyncio.create_task(worker.notify.service.run_dispatcher(stop))
    recipient = f"wake-{uuid.uuid4().hex[:6]}@example.jp"
    try:
        await asyncio.sleep(1.5)  # idle, its change stream open
        reads.clear()

        await record_and_wait_for_mail(api, api_store, sink, recipient)
        await asyncio.sleep(1.0)  # until it sleeps again
        # Due ones, claim, the claimed ones, mark sent, when the next is due (the idle wait): five, was six.
        assert reads == ["find", "update", "find", "update", "find"], reads
    finally:
        stop.set()
        worker.notify.service.wake.set()
        await asyncio.wait_for(task, 10)
        sink.down()
        await client.close()

