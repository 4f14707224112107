"""Runs the real outbox relay against one database until killed (used by the kill -9 test)."""

from __future__ import annotations

import asyncio
import sys

from kagi_shared.kafka import make_producer
from kagi_shared.mongo import Store, make_client
from kagi_shared.outbox import OutboxRelay
from kagi_shared.settings import get_settings


async def main(db_name: str) -> None:
    settings = get_settings()
    producer = make_producer(settings, "relay-under-test")
    await producer.start()
    relay = OutboxRelay(Store(make_client(settings), db_name), producer, settings)
    await relay.run(asyncio.Event())


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
