"""Fail fast while the database is away.

Without this, every request during an outage waits out MongoDB's server selection (seconds) before it
fails, requests pile up, and the gateway's deadline turns the service's clear 503 into a 504. Once one
request has found the database unreachable, the breaker is *open*: the service answers 503 with
Retry-After at once, and a single background probe pings the database until it answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from kagi_shared.logging import get_logger

log = get_logger(__name__)

Ping = Callable[[], Awaitable[None]]


class DatabaseBreaker:
    def __init__(self, retry_s: float = 0.5) -> None:
        self.retry_s = retry_s
        self._ping: Ping | None = None
        self._probe: asyncio.Task[None] | None = None

    def watch(self, ping: Ping) -> None:
        """The check that proves the database is back (the service's readiness check); starts closed."""
        self._ping = ping
        if self._probe is not None:
            self._probe.cancel()
            self._probe = None

    @property
    def open(self) -> bool:
        return self._probe is not None and not self._probe.done()

    def trip(self) -> None:
        """A request found the database unreachable: fail the next ones fast until a ping succeeds."""
        if self._ping is None or self.open:
            return
        log.warning("database.breaker_open")
        self._probe = asyncio.get_running_loop().create_task(self._until_back(self._ping))

    async def _until_back(self, ping: Ping) -> None:
        while True:
            with contextlib.suppress(Exception):
                await ping()
                log.info("database.breaker_closed")
                return
            await asyncio.sleep(self.retry_s)

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
            self._probe = None


# One database per service process: the breaker is a fact about this process's connection to it.
DATABASE = DatabaseBreaker()

__all__ = ["DATABASE", "DatabaseBreaker"]
