"""Helpers the test tiers share (imported as ``tests.support``)."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer


async def read_from_now_on(consumer: AIOKafkaConsumer) -> None:
    """Wait for a subscribed consumer's partitions, then start at their current ends: the test reads only what is
    published after this call, not what earlier tests left on the shared topics."""
    while not consumer.assignment():
        await consumer.getmany(timeout_ms=200)
    await consumer.seek_to_end()
    for tp in consumer.assignment():
        await consumer.position(tp)
