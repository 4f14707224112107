"""Notify's worker: records one delivery per request event, dispatches mail and SMS, relays delivery events."""

from __future__ import annotations

import asyncio

from kagi_notify.bootstrap import NAME, bootstrap, consumers
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime

# Each topic's messages are handled in turn; one transaction per event (inbox row + delivery) on the embedded
# database held mails back by tens of seconds at 32 concurrent invitation flows. A batch is one transaction,
# and a failing batch falls back to one event at a time.
BATCH = 100
BATCH_WITHIN_S = 0.05


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    notify = bootstrap(settings, runtime.store, runtime.dead_letter)
    for topic, consumer in consumers(notify, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer, batch=BATCH, within=BATCH_WITHIN_S)

    async def dispatcher() -> None:
        await notify.start()
        await notify.service.run_dispatcher(asyncio.Event())

    runtime.task(dispatcher)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
