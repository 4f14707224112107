"""aiokafka producer, admin and topic creation, configured from settings."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from kagi_shared.settings import Settings
from kagi_shared.topics import CATALOGUE


def make_producer(settings: Settings, client_id: str) -> AIOKafkaProducer:
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        client_id=client_id,
        acks="all",
        enable_idempotence=settings.kafka.enable_idempotence,
        linger_ms=2,
        request_timeout_ms=10_000,
    )


async def ensure_topics(settings: Settings, names: list[str] | None = None) -> list[str]:
    """Create the catalogue's topics (and their DLTs) that do not exist yet; returns the created ones."""
    wanted: dict[str, int] = {}
    for topic in CATALOGUE:
        wanted[topic.name] = topic.partitions
        if topic.consumers:
            wanted[topic.dlt] = 1
    if names is not None:
        wanted = {n: wanted.get(n, settings.kafka.default_partitions) for n in names}
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap, client_id="kagi-admin")
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [NewTopic(n, p, 1) for n, p in wanted.items() if n not in existing]
        if missing:
            try:
                await admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another process won the race; the topic exists either way
        # Metadata for a new topic propagates asynchronously; wait until it is visible.
        for _ in range(50):
            if {t.name for t in missing} <= set(await admin.list_topics()):
                break
            await asyncio.sleep(0.1)
        return [t.name for t in missing]
    finally:
        await admin.close()
