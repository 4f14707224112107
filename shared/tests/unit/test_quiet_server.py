"""The services' HTTP server wakes once a second when idle, keeps the Date header, and stops at once on a signal."""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from typing import Any

import httpx
import uvicorn

from kagi_shared.service_api import QuietServer


async def hello(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class CountingServer(QuietServer):
    ticks = 0

    async def on_tick(self, counter: int) -> bool:
        self.ticks += 1
        return await super().on_tick(counter)


async def test_idle_server_ticks_once_a_second_serves_a_date_and_stops_at_once() -> None:
    port = free_port()
    server = CountingServer(uvicorn.Config(hello, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(100):
            if server.started:
                break
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/")
        assert reply.status_code == 200
        assert reply.headers["date"].endswith("GMT")
        before = server.ticks
        await asyncio.sleep(2.0)
        assert server.ticks - before <= 3  # uvicorn's own loop ticks 20 times in 2 s
        started = time.monotonic()
        server.handle_exit(signal.SIGTERM, None)
        server._captured_signals.clear()  # uvicorn re-raises a handled signal once it has stopped: not here
        await asyncio.wait_for(task, 5)
        assert time.monotonic() - started < 0.9  # woken by the signal, not by the next tick
    finally:
        if not task.done():
            server.should_exit = True
            await task
