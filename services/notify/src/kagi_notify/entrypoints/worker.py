"""Notify's worker: records one delivery per request event, dispatches mail, relays delivery events."""

from __future__ import annotations

import asyncio

from kagi_notify.bootstrap import NAME, bootstrap
from kagi_shared.events import notify as ev
from kagi_shared.inbox import InboxConsumer
from kagi_shared.settings import get_settings
from kagi_shared.topics import NOTIFY_REQUESTS
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    notify = bootstrap(settings, runtime.store, runtime.dead_letter)
    runtime.consume(NOTIFY_REQUESTS.name, InboxConsumer(
        "notify", runtime.store, {ev.NotificationRequested: notify.service.on_request},
        runtime.dead_letter, settings))

    async def dispatcher() -> None:
        await notify.start()
        await notify.service.run_dispatcher(asyncio.Event())

    runtime.task(dispatcher)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
