"""A service whose database goes away answers 503 at once (not after each request's server selection) and
serves again by itself when the database returns.

The database connection runs through a TCP proxy the test switches off and on: a real outage on a real
connection to the embedded server.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from litestar import get
from litestar.testing import AsyncTestClient
from pymongo import AsyncMongoClient

from kagi_shared.breaker import DATABASE
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, ServiceApi, service_app
from kagi_shared.settings import Settings
from tests.support import Proxy


async def test_database_outage_fails_fast_then_recovers(settings: Settings) -> None:
    proxy = Proxy(settings.ports.mongo)
    proxy.on()
    clients: list[AsyncMongoClient[dict[str, Any]]] = []
    reached: list[int] = []

    def mongo() -> AsyncMongoClient[dict[str, Any]]:
        # Made on first use, on the app's own loop (the test client runs the app on another one).
        if not clients:
            clients.append(AsyncMongoClient(f"mongodb://127.0.0.1:{proxy.port}/?directConnection=true",
                                            serverSelectionTimeoutMS=3000, heartbeatFrequencyMS=500))
        return clients[0]

    @get("/thing")
    async def thing() -> dict[str, Any]:
        reached.append(1)
        await mongo()["breaker_test"]["things"].find_one({})
        return {"ok": True}

    async def ready() -> None:
        await mongo().admin.command("ping")

    @contextlib.asynccontextmanager
    async def lifespan(_: object) -> AsyncIterator[None]:
        yield
        await DATABASE.close()
        for client in clients:
            await client.close()

    app = service_app(settings, ServiceApi("breaker-test", [thing], ready=ready, lifespan=[lifespan]))
    try:
        async with AsyncTestClient(app=app) as http:
            http.headers[INTERNAL_TOKEN_HEADER] = settings.security.internal_token
            assert (await http.get("/thing")).status_code == 200

            proxy.off()
            first = await http.get("/thing")
            assert first.status_code == 503 and first.json()["code"] == "service.unavailable"
            assert first.headers["retry-after"] == "5"
            calls_when_tripped = len(reached)
            for _ in range(5):  # later requests are answered without touching the database
                again = await http.get("/thing")
                assert again.status_code == 503 and again.json()["code"] == "service.unavailable"
            assert len(reached) == calls_when_tripped
            assert (await http.get("/health")).status_code == 200  # liveness is not the database's business
            assert (await http.get("/ready")).status_code == 503

            proxy.on()  # same port: the database is back
            for _ in range(200):
                if (await http.get("/thing")).status_code == 200:
                    break
                await asyncio.sleep(0.05)
            assert (await http.get("/thing")).status_code == 200
            assert not DATABASE.open
    finally:
        with contextlib.suppress(Exception):
            proxy.off()
        proxy.stop()
