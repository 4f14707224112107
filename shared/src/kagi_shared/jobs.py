"""Scheduled jobs a service declares in its ``bootstrap.py``; the worker registers them (``kagi_shared.worker``).

Kept apart from the worker runtime so a composition root declares them without importing faust (the API
processes import ``bootstrap.py`` too).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import tzinfo

from kagi_shared.logging import get_logger

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
