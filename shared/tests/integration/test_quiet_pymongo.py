"""``kagi_shared.quiet_pymongo``: an idle client's background tasks wake its process only when work is due, and a
monitor asked to check its server still checks it at once."""

from __future__ import annotations

import asyncio
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from kagi_shared import quiet_pymongo
from kagi_shared.settings import Settings

WINDOW_S = 4.0


async def timers_scheduled_while_idle(client: AsyncMongoClient[dict[str, Any]]) -> int:
    await client.admin.command("ping")
    await asyncio.sleep(1.0)  # connected, monitors settled
    loop = asyncio.get_running_loop()
    scheduled = 0
    call_at = loop.call_at

    def counting(when: float, callback: Any, *args: Any, context: Any = None) -> asyncio.TimerHandle:
        nonlocal scheduled
        scheduled += 1
        return call_at(when, callback, *args, context=context)

    loop.call_at = counting  # type: ignore[method-assign,assignment]
    try:
        await asyncio.sleep(WINDOW_S)
    finally:
        del loop.call_at
    return scheduled - 1  # the sleep above


async def test_an_idle_client_wakes_its_process_once_a_second_not_four_times(settings: Settings) -> None:
    quiet_pymongo.install()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, serverMonitoringMode="poll")
    try:
        scheduled = await timers_scheduled_while_idle(client)
    finally:
        await client.close()
    # Cursor and pool upkeep once a second, a server check every 10 s; PyMongo alone looks every half second in
    # each of its two tasks (16 in the window).
    assert scheduled <= WINDOW_S + 2, scheduled


class Heartbeats(monitoring.ServerHeartbeatListener):
    def __init__(self) -> None:
        self.checked = asyncio.Event()

    def started(self, event: monitoring.ServerHeartbeatStartedEvent) -> None:
        self.checked.set()

    def succeeded(self, event: monitoring.ServerHeartbeatSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.ServerHeartbeatFailedEvent) -> None:
        pass


async def test_a_monitor_asked_to_check_its_server_checks_it_at_once(settings: Settings) -> None:
    quiet_pymongo.install()
    heartbeats = Heartbeats()
    # Checks a minute apart: a check within the wait below can only be the one asked for.
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_uri, serverMonitoringMode="poll", heartbeatFrequencyMS=60_000, event_listeners=[heartbeats])
    try:
        await client.admin.command("ping")
        await asyncio.sleep(1.0)
        heartbeats.checked.clear()
        # What PyMongo does when an operation finds its server gone (a database restarting) or none is selectable.
        client._topology._request_check_all()
        await asyncio.wait_for(heartbeats.checked.wait(), 10)  # the monitor did not sleep through the request
    finally:
        await client.close()
