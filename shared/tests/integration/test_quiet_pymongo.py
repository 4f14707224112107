"""``kagi_shared.quiet_pymongo``: an idle client's background tasks, and a change stream waiting at the server, wake
the process only when work is due; a monitor asked to check its server still checks it at once, and a connection
interrupted while it waits for its reply stops waiting at once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine
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


def on_a_loop_of_its_own(scenario: Callable[[], Coroutine[Any, Any, int]]) -> Awaitable[int]:
    """Run ``scenario`` on a new event loop in a thread: only its own client's timers are counted (clients other
    tests left open share the test's loop)."""
    return asyncio.to_thread(asyncio.run, scenario())


async def test_an_idle_client_wakes_its_process_once_a_second_not_four_times(settings: Settings) -> None:
    quiet_pymongo.install()

    async def idle() -> int:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, serverMonitoringMode="poll")
        try:
            return await timers_scheduled_while_idle(client)
        finally:
            await client.close()

    scheduled = await on_a_loop_of_its_own(idle)
    # Cursor and pool upkeep once a second, a server check every 10 s; PyMongo alone looks every half second in
    # each of its two tasks (16 in the window).
    assert scheduled <= WINDOW_S + 2, scheduled


async def test_a_change_stream_waiting_at_the_server_does_not_wake_its_process(settings: Settings) -> None:
    quiet_pymongo.install()

    async def waiting_for_a_change() -> int:
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(settings.mongo_uri, serverMonitoringMode="poll")
        db = client[f"test_quiet_{uuid.uuid4().hex[:8]}"]
        try:
            await db.create_collection("watched")
            async with await db.watched.watch(max_await_time_ms=60_000) as stream:
                waiting = asyncio.create_task(anext(stream))
                scheduled = await timers_scheduled_while_idle(client)
                waiting.cancel()
                return scheduled
        finally:
            await client.drop_database(db.name)
            await client.close()

    scheduled = await on_a_loop_of_its_own(waiting_for_a_change)
    # PyMongo alone looks whether the connection was cancelled every half second while a reply is awaited: 8 more.
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


class GetMoreFailures(monitoring.CommandListener):
    def __init__(self) -> None:
        self.failed_get_more = asyncio.Event()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        if event.command_name == "getMore":
            self.failed_get_more.set()


async def test_a_connection_interrupted_while_it_awaits_its_reply_stops_waiting_at_once(settings: Settings) -> None:
    quiet_pymongo.install()
    failures = GetMoreFailures()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        settings.mongo_uri, serverMonitoringMode="poll", event_listeners=[failures])
    db = client[f"test_quiet_{uuid.uuid4().hex[:8]}"]
    try:
        await db.create_collection("watched")
        async with await db.watched.watch(max_await_time_ms=60_000) as stream:
            waiting = asyncio.create_task(anext(stream))
            await asyncio.sleep(0.5)  # the getMore waits at the server for a minute
            # What PyMongo does to the connections in use when its monitor finds their server gone.
            (server,) = client._topology._servers.values()
            await server.pool.reset(interrupt_connections=True)
            await asyncio.wait_for(failures.failed_get_more.wait(), 10)
            waiting.cancel()
    finally:
        await client.drop_database(db.name)
        await client.close()
