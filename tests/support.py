"""Helpers the test tiers share (imported as ``tests.support``)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from aiokafka import AIOKafkaConsumer
from litestar import Litestar

from kagi_shared.events.notify import Notice, NotificationRequested, opened
from kagi_shared.settings import DEV_SECRETS, get_settings

UNREACHABLE = "http://127.0.0.1:9"  # the discard port: nothing listens


class Clock:
    """The service's time source; a test sets or advances it (the code under test reads it like the wall clock)."""

    def __init__(self, at: datetime = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


async def read_from_now_on(consumer: AIOKafkaConsumer) -> None:
    """Wait for a subscribed consumer's partitions, then start at their current ends: the test reads only what is
    published after this call, not what earlier tests left on the shared topics."""
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)


def opened_notice(event: Any) -> Notice:
    """A ``notify.requests`` event's notice, variables opened with the key the tests run with."""
    return opened(DEV_SECRETS["notify_key"], event)


def opened_request(data: dict[str, Any]) -> dict[str, Any]:
    """A ``notify.requests`` envelope's ``data`` (as JSON) with its sealed variables opened under ``variables``."""
    event = msgspec.convert(data, NotificationRequested)
    return {**data, "variables": opened_notice(event).variables}


def no_services(monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the gateway at services that are not there (a test of what the gateway decides on its own)."""
    for service in ("lifecycle", "invite", "permissions", "notify", "audit"):
        monkeypatch.setenv(f"KAGI_{service.upper()}_URL", UNREACHABLE)


@asynccontextmanager
async def gateway_app() -> AsyncIterator[Litestar]:
    """A gateway in this process built from the settings the test set (its lifespan opened and closed in the
    test's own task, as anyio requires); the settings are read afresh before and after."""
    from kagi_gateway.app import create_app

    get_settings.cache_clear()
    app = create_app()
    try:
        async with app.lifespan():
            yield app
    finally:
        get_settings.cache_clear()


def thread_hops(app: Litestar) -> list[str]:
    """Every guard, request hook and dependency of ``app``'s routes that Litestar would run on a worker thread.

    Litestar hands a plain function in any of these places to a thread pool on each request: a thread hand-off
    and a loop wake-up that cost more than the function itself. Each is named ``<path> <kind> <function>``.
    """
    from litestar.routes import HTTPRoute
    from litestar.utils.sync import AsyncCallable

    found = []
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            hooks = [("guard", g) for g in handler.resolve_guards()]
            hooks += [(kind, hook) for layer in handler.ownership_layers for kind in ("before_request", "after_request",
                                                                                    "after_response")
                      if (hook := getattr(layer, kind, None)) is not None]
            found += [f"{route.path} {kind} {hook.func.__qualname__}" for kind, hook in hooks
                      if isinstance(hook, AsyncCallable)]
            found += [f"{route.path} dependency {key}" for key, provide in handler.resolve_dependencies().items()
                      if provide.has_sync_callable and provide.sync_to_thread]
            if handler.has_sync_callable and handler.sync_to_thread:
                found.append(f"{route.path} handler {handler.handler_name}")
    return found


@asynccontextmanager
async def client_from(app: Litestar, peer: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """A client of an in-process app whose calls come from the socket peer ``peer`` (what the edge sees)."""
    transport = httpx.ASGITransport(app=app, client=(peer, 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway", timeout=15) as client:
        yield client


class Proxy:
    """A real outage on a real connection: forwards 127.0.0.1:<port> to the embedded database while on; off
    closes the listener and every link.

    It runs its own event loop on a thread, so it forwards whatever the test's loop is doing.
    """

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        threading.Thread(target=self._loop.run_forever, daemon=True).start()

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def on(self) -> None:
        async def listen() -> None:
            self._server = await asyncio.start_server(self._link, "127.0.0.1", self.port)
            self.port = self._server.sockets[0].getsockname()[1]

        self._run(listen())

    def off(self) -> None:
        async def close() -> None:
            assert self._server is not None
            self._server.close()
            for writer in list(self._links):
                writer.close()
            self._links.clear()
            await self._server.wait_closed()

        self._run(close())

    def stop(self) -> None:
        async def cancel_links() -> None:
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        self._run(cancel_links())
        self._loop.call_soon_threadsafe(self._loop.stop)

    async def _link(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._links |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
