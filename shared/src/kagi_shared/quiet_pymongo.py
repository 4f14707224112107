"""PyMongo's background tasks sleep until they are due or woken, instead of looking every half second.

Each ``AsyncMongoClient`` runs its periodic work (the server monitor's check every ``heartbeatFrequencyMS``, the
cursor and pool upkeep every second) in ``AsyncPeriodicExecutor``. Its ``wake()`` only sets a flag, so between
two runs the task sleeps in steps of ``min_interval`` (0.5 s) to look at it: an idle client woke its process four
times a second to run its work about once a second, and every process has a client (the idle cost of issue #21).

``install()`` replaces the sleep with one wait on an event that ``wake()`` sets. What runs, and when, stays as
PyMongo decides: the work runs every ``interval``; a wake runs it early, never sooner than ``min_interval`` after
the last run (a monitor asked to check a server that went away, such as a database restarting, checks it as soon
as before, or sooner: it no longer waits for its next half-second look). Written against PyMongo 4.20; the test
``shared/tests/integration/test_quiet_pymongo.py`` fails if a release changes what this relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pymongo import _csot, _op_id
from pymongo.periodic_executor import AsyncPeriodicExecutor


async def _run(self: Any) -> None:
    # PyMongo's own start of the task: no operation's timeout or id leaks into the background work.
    _csot.reset_all()
    _op_id.reset()
    self._kagi_loop = asyncio.get_running_loop()
    self._kagi_woken = woken = asyncio.Event()
    if self._event:
        woken.set()
    while not self._stopped:
        if self._task and self._task.cancelling():
            raise asyncio.CancelledError
        try:
            if not await self._target():
                self._stopped = True
                break
        except BaseException:
            self._stopped = True
            raise
        if self._skip_sleep:
            self._skip_sleep = False
        else:
            ran = time.monotonic()
            if not self._event:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._interval):
                        await woken.wait()
            rest = ran + self._min_interval - time.monotonic()
            if rest > 0 and not self._stopped:
                await asyncio.sleep(rest)
        # A wake from here on comes after the run below has begun being due: that run serves it.
        self._event = False
        woken.clear()


def _wake(self: Any) -> None:
    self._event = True
    woken: asyncio.Event | None = getattr(self, "_kagi_woken", None)
    loop: asyncio.AbstractEventLoop | None = getattr(self, "_kagi_loop", None)
    if woken is None or loop is None:
        return  # not running yet: ``_run`` sees the flag when it starts
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        woken.set()
    else:  # PyMongo calls it from its own loop; anything else must hand it over
        with contextlib.suppress(RuntimeError):  # that loop has closed: nothing left to wake
            loop.call_soon_threadsafe(woken.set)


def install() -> None:
    """Make every ``AsyncPeriodicExecutor`` started from now on wait instead of poll (idempotent)."""
    AsyncPeriodicExecutor._run = _run  # type: ignore[method-assign]
    AsyncPeriodicExecutor.wake = _wake  # type: ignore[method-assign]
