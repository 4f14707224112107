"""The target simulator keeps up with a batch: the acks of one fetch share the broker's round trips."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiokafka import ConsumerRecord

from kagi_permissions.devtools.target_simulator import FailSwitch, acknowledge
from kagi_shared.events import decode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.events.envelope import encode
from kagi_shared.kafka import ensure_topics, make_producer, read_topic
from kagi_shared.settings import Settings
from kagi_shared.topics import PERMISSIONS_ACKS

SYSTEMS = ("TAXIS", "JOHS", "LOACUS", "JUJU", "INFOSITE")


def fetched(requests: list[str]) -> list[ConsumerRecord[bytes, bytes]]:
    """The grant commands a fetch would return: every request's systems in turn."""
    records = []
    for n, (system, request_id) in enumerate((s, r) for s in SYSTEMS for r in requests):
        command = ev.GrantCommanded(command_id=f"{request_id}-{system}", request_id=request_id, company_id="co",
                                    user_id=f"{request_id}@example.jp", system=system, action="grant",
                                    before=None, after="yes", effective_on=None)
        value = encode(new_envelope(command, source="test", subject=command.user_id))
        records.append(ConsumerRecord(f"permissions.grants.{system.lower()}", 0, n, 0, 0, None, value, None, 0,
                                      len(value), []))
    return records


async def test_the_acks_of_one_fetch_are_in_flight_together_and_keep_each_requests_order(
        settings: Settings) -> None:
    await ensure_topics(settings)
    producer = make_producer(settings, "test-simulator")
    await producer.start()
    in_flight = peak = 0
    send = producer.send

    async def counted(*args: Any, **kwargs: Any) -> asyncio.Future[Any]:
        nonlocal in_flight, peak
        future = await send(*args, **kwargs)
        in_flight += 1
        peak = max(peak, in_flight)

        def done(_: asyncio.Future[Any]) -> None:
            nonlocal in_flight
            in_flight -= 1

        future.add_done_callback(done)
        return future

    producer.send = counted  # type: ignore[method-assign]
    requests = [f"sim-{uuid.uuid4().hex[:8]}" for _ in range(40)]
    try:
        answered = await acknowledge(producer, fetched(requests), FailSwitch(systems=frozenset({"JUJU"})))
    finally:
        await producer.stop()
    assert answered == 200
    # One ack awaited before the next was sent (a broker round trip each) kept this at 1. Sent together, most of the
    # 200 are in flight at once; how many depends on how soon the broker answers the first ones (95–200 seen).
    assert peak >= 20, peak
    acks = [a for _, a in map(decode, (r.value for r in await read_topic(settings, PERMISSIONS_ACKS.name)))
            if isinstance(a, ev.GrantAcknowledged) and a.request_id in requests]
    assert len(acks) == 200
    for request_id in requests:
        mine = [a for a in acks if a.request_id == request_id]
        assert [a.system for a in mine] == list(SYSTEMS)
        assert [a.outcome for a in mine] == ["applied", "applied", "applied", "failed", "applied"]
