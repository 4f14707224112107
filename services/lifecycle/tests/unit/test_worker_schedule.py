"""The worker registers the daily inactivity sweep on faust at the configured crontab and time zone.

Checked without starting a worker: the app's registered task is run up to faust's first sleep, and
the seconds it would sleep are compared with the next scheduled moment computed here independently.
"""

from __future__ import annotations

import inspect
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from kagi_lifecycle.bootstrap import jobs
from kagi_shared.faust_app import make_faust_app
from kagi_shared.settings import LifecycleSettings, Settings
from kagi_shared.worker import schedule


class _Slept(Exception):
    pass


async def seconds_until_first_run(settings: Settings, tmp_path: Any) -> float:
    """How long the registered crontab task would sleep before its first sweep, were the worker started now."""
    settings = msgspec.structs.replace(settings, var_dir=str(tmp_path))
    app = make_faust_app("lifecycle", settings)
    [sweep] = jobs(lifecycle=None, settings=settings)  # type: ignore[arg-type]
    registered = schedule(app, sweep)
    # What faust starts once the worker is up (App.on_started_init_extra_tasks).
    [task] = app._app_tasks
    assert task is registered and inspect.unwrap(task).__name__ == "inactivity_sweep"
    slept: list[float] = []

    async def sleep(seconds: float, *args: Any, **kwargs: Any) -> None:
        slept.append(seconds)
        raise _Slept  # stop before the sweep itself would run

    app.sleep = sleep  # type: ignore[method-assign]
    with pytest.raises(_Slept):
        await task()
    return slept[0]


def seconds_until(hour: int, minute: int, zone: str, weekday: int | None = None) -> float:
    now = datetime.now(UTC)
    local = now.astimezone(ZoneInfo(zone))
    moment = local.replace(hour=hour, minute=minute, second=0, microsecond=0)
    while moment <= local or (weekday is not None and moment.weekday() != weekday):
        moment += timedelta(days=1)
    return (moment - now).total_seconds()


async def test_the_sweep_runs_daily_at_seven_japan_time_by_default(tmp_path: Any) -> None:
    settings = Settings()
    assert (settings.lifecycle.sweep_cron, settings.lifecycle.sweep_timezone) == ("0 7 * * *", "Asia/Tokyo")
    started = time.time()
    waited = await seconds_until_first_run(settings, tmp_path)
    expected = seconds_until(7, 0, "Asia/Tokyo")
    assert abs(waited - expected) <= 2 + (time.time() - started)
    assert 0 < waited <= 86400


async def test_the_schedule_and_time_zone_are_settings(tmp_path: Any) -> None:
    settings = Settings(lifecycle=LifecycleSettings(sweep_cron="30 6 * * 1", sweep_timezone="America/New_York"))
    started = time.time()
    waited = await seconds_until_first_run(settings, tmp_path)
    expected = seconds_until(6, 30, "America/New_York", weekday=0)
    assert abs(waited - expected) <= 2 + (time.time() - started)
