"""Helpers the test tiers share (imported as ``tests.support``)."""

from __future__ import annotations

from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer

from kagi_shared.events.notify import Notice, NotificationRequested, opened
from kagi_shared.settings import DEV_SECRETS


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
