"""Permissions' worker: applies target-system acks, follows lifecycle logins and purges, runs due batches
and ack reminders on a timer, and relays its outbox (grant commands included)."""

from __future__ import annotations

import asyncio

from kagi_permissions.bootstrap import BATCHED_TOPICS, NAME, bootstrap, consumers
from kagi_shared.logging import get_logger
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime

log = get_logger(__name__)


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    permissions = bootstrap(settings, runtime.store)
    for topic, consumer in consumers(permissions, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer, batch=BATCHED_TOPICS.get(topic, 1))

    async def scheduler() -> None:
        """The batch runs by itself on its date (and catches up after downtime); overdue acks raise reminders."""
        await permissions.start()
        while True:
            try:
                result, reminded = await permissions.requests.tick()
                if result.requests:
                    log.info("batch.ran", batch_date=str(result.batch_date), requests=result.requests,
                             commands=result.commands)
                if reminded:
                    log.warning("acks.overdue", reminded=reminded)
            except Exception:
                log.exception("scheduler.failed")
            await asyncio.sleep(settings.permissions.scheduler_interval_s)

    runtime.task(scheduler)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
