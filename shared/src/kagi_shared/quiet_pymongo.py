"""PyMongo waits for what it waits for, instead of looking every half second.

Two of PyMongo's asynchronous waits poll a flag every 0.5 s, and every process has a client (the idle cost of
issue #21):

- **Background tasks.** Each ``AsyncMongoClient`` runs its periodic work (the server monitor's check every
  ``heartbeatFrequencyMS``, the cursor and pool upkeep every second) in ``AsyncPeriodicExecutor``. Its ``wake()``
  only sets a flag, so between two runs the task slept in steps of ``min_interval`` to look at it: an idle client
  woke its process four times a second to run its work about once a second.
- **Waiting for a reply.** Every reply a client waits for is raced against the connection being cancelled (the
  pool closing it), and that task looked at the connection's flag every 0.5 s. A change stream waits up to
  ``KAGI_OUTBOX_WATCH_AWAIT_S`` (5 s) for its reply, so each open stream woke its process twice a second.

``install()`` makes both wait on an event that ``wake()`` and ``cancel()`` set. What runs, and when, stays as
PyMongo decides: periodic work runs every ``interval``; a wake runs it early, never sooner than ``min_interval``
after the last run (a monitor asked to check a server that went away, such as a database restarting, checks it as
soon as before, or sooner: it no longer waits for its next half-second look); a cancelled connection stops waiting
for its reply at once. Written against PyMongo 4.20; ``shared/tests/integration/test_quiet_pymongo.py`` fails if a
release changes what this relies on.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from pymongo import _csot, _op_id, network_layer
from pymongo.periodic_executor import AsyncPeriodicExecutor
from pymongo.pool_shared import _CancellationContext

_WAITERS = "_kagi_waiters"


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
        # The run that follows serves any wake up to here, as PyMongo's own loop does.
        self._event = False
        woken.clear()


def _wake(self: Any) -> None:
    self._event = True
    woken: asyncio.Event | None = getattr(self, "_kagi_woken", None)
    loop: asyncio.AbstractEventLoop | None = getattr(self, "_kagi_loop", None)
    if woken is not None and loop is not None:  # else not running yet: ``_run`` sees the flag when it starts
        _set(loop, woken)


def _set(loop: asyncio.AbstractEventLoop, event: asyncio.Event) -> None:
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        event.set()
    else:  # PyMongo calls from its own loop; anything else must hand it over
        with contextlib.suppress(RuntimeError):  # that loop has closed: nothing left to wake
            loop.call_soon_threadsafe(event.set)


async def _await_cancellation(conn: Any) -> None:
    """Return once the connection's operation is cancelled (``network_layer._poll_cancellation``'s contract)."""
    context = conn.cancel_context
    cancelled = asyncio.Event()
    waiter = (asyncio.get_running_loop(), cancelled)
    waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = context.__dict__.setdefault(_WAITERS, set())
    waiters.add(waiter)
    try:
        while not context.cancelled:  # read after joining the waiters: a cancel from another thread is not missed
            await cancelled.wait()
    finally:
        waiters.discard(waiter)


_original_cancel = _CancellationContext.cancel


def _cancel(self: Any) -> None:
    _original_cancel(self)
    for loop, cancelled in list(self.__dict__.get(_WAITERS, ())):
        _set(loop, cancelled)


def install() -> None:
    """Make every wait of PyMongo's begun from now on wait instead of poll (idempotent)."""
    AsyncPeriodicExecutor._run = _run  # type: ignore[method-assign]
    AsyncPeriodicExecutor.wake = _wake  # type: ignore[method-assign]
    _CancellationContext.cancel = _cancel  # type: ignore[method-assign]
    network_layer._poll_cancellation = _await_cancellation
