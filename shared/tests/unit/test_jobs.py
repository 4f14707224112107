"""A job declared ``Every``: set up once, run at once, and kept going after a failed run."""

from __future__ import annotations

import asyncio
import contextlib

from kagi_shared.jobs import Every, run_every


async def test_runs_at_once_then_every_interval_and_survives_a_failure() -> None:
    calls: list[str] = []

    async def setup() -> None:
        calls.append("setup")

    async def run() -> None:
        calls.append("run")
        if calls.count("run") == 2:
            raise RuntimeError("the database blinked")

    task = asyncio.create_task(run_every(Every("test", 0.01, run, setup=setup)))
    for _ in range(200):
        if calls.count("run") >= 4:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    assert calls[:2] == ["setup", "run"] and calls.count("setup") == 1 and calls.count("run") >= 4


async def test_the_first_run_does_not_wait_out_the_interval() -> None:
    ran = asyncio.Event()

    async def run() -> None:
        ran.set()

    task = asyncio.create_task(run_every(Every("test", 3600, run)))
    await asyncio.wait_for(ran.wait(), 1.0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
