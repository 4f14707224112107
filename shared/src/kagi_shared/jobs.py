"""What a service's worker runs, declared in its ``bootstrap.py`` (a ``WorkerPlan``: consumers, scheduled jobs,
background tasks); the shared worker registers it (``kagi_shared.worker.run_worker``).

Kept apart from the worker runtime so a composition root declares them without importing faust (the API
processes import ``bootstrap.py`` too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import TYPE_CHECKING

from kagi_shared.logging import get_logger

if TYPE_CHECKING:
    from kagi_shared.inbox import DeadLetterSink, InboxConsumer
    from kagi_shared.mongo import Store
    from kagi_shared.settings import Settings

log = get_logger(__name__)

Run = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Crontab:
    """A job at calendar moments (``cron`` read in ``timezone``): faust's crontab, on every worker of the
    service (no leader election; a job that must run once per moment makes itself idempotent)."""

    cron: str
    timezone: tzinfo
    run: Run


@dataclass(frozen=True)
class Every:
    """A job run as soon as the worker starts, then ``interval_s`` after each run ends, on every worker.

    Not faust's ``timer``: that one first sleeps a whole interval (a batch due while the worker was down
    would wait for it) and its task ends at the first exception; here a failed run is logged and the next
    one comes on time. ``setup`` is awaited once before the first run.
    """

    name: str
    interval_s: float
    run: Run
    setup: Run | None = None


Job = Crontab | Every


async def run_every(job: Every) -> None:
    if job.setup is not None:
        await job.setup()
    while True:
        try:
            await job.run()
        except Exception:
            log.exception("scheduler.failed", job=job.name)
        await asyncio.sleep(job.interval_s)


BATCH_WITHIN_S = 0.2
"""How long a batching consumer waits for its batch to fill, unless its plan says otherwise."""


@dataclass(frozen=True)
class WorkerPlan:
    """Everything one service's worker process runs besides its outbox relay (every worker relays its outbox).

    ``batches`` names the topics whose messages are handled up to that many at a time (one transaction a batch,
    after at most ``batch_within_s`` of waiting for it to fill); every other topic is handled one at a time.
    ``tasks`` run once the worker is up (a dispatcher, index creation)."""

    consumers: Mapping[str, InboxConsumer]
    jobs: Sequence[Job] = ()
    tasks: Sequence[Run] = ()
    batches: Mapping[str, int] = field(default_factory=dict)
    batch_within_s: float = BATCH_WITHIN_S


PlanWorker = Callable[["Settings", "Store", "DeadLetterSink"], WorkerPlan]
"""A ``bootstrap.py``'s ``worker``: its service built on the worker's store and dead-letter sink, and the plan."""
