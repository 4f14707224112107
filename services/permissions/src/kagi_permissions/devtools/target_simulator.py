"""Development tool, not a service: stands in for TAXIS, JOHS, JUJU, LOACUS, the info-sharing site and the
permission-management system in the embedded setup, so ``make run`` shows the whole grant flow.

It reads every ``permissions.grants.<system>`` topic and answers each command on ``permissions.acks``.
Switches (environment): ``KAGI_SIMULATOR_FAIL_SYSTEMS=JUJU,LOACUS`` fails every command of those systems;
``KAGI_SIMULATOR_FAIL_EVERY=N`` fails every N-th command; failed commands can then be retried by the operator.
Run: ``python -m kagi_permissions.devtools.target_simulator``.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer, ConsumerRecord

from kagi_shared.events import decode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.kafka import adapt_fetch_wait, enqueue, ensure_topics, make_consumer, make_producer
from kagi_shared.logging import configure_logging, get_logger
from kagi_shared.settings import Settings, get_settings
from kagi_shared.topics import GRANT_TOPICS, PERMISSIONS_ACKS

log = get_logger(__name__)


@dataclass
class FailSwitch:
    systems: frozenset[str] = frozenset()
    every: int = 0
    seen: int = field(default=0)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> FailSwitch:
        env = dict(os.environ if environ is None else environ)
        systems = frozenset(s.strip().upper() for s in env.get("KAGI_SIMULATOR_FAIL_SYSTEMS", "").split(",")
                            if s.strip())
        return cls(systems=systems, every=int(env.get("KAGI_SIMULATOR_FAIL_EVERY", "0") or 0))

    def answer(self, command: ev.GrantCommanded) -> ev.GrantAcknowledged:
        self.seen += 1
        failed = command.system in self.systems or (self.every > 0 and self.seen % self.every == 0)
        return ev.GrantAcknowledged(
            command_id=command.command_id, request_id=command.request_id, system=command.system,
            user_id=command.user_id, outcome="failed" if failed else "applied",
            reason=f"{command.system} simulator: refused by the fail switch" if failed else None)


async def acknowledge(producer: AIOKafkaProducer, records: Iterable[ConsumerRecord[bytes, bytes]],
                      switch: FailSwitch) -> int:
    """Answer the grant commands of one fetch; returns how many were answered.

    Every ack is handed to the producer before any is awaited: one broker round trip per ack capped the
    simulator at ~60–90 acks/s, below what the worker applies, so the permissions benchmark measured the
    simulator. The producer keeps the order of the sends per partition (acks are keyed by request)."""
    sent: list[asyncio.Future[Any]] = []
    for record in records:
        try:
            _, command = decode(record.value or b"")
        except Exception as exc:  # a dev tool: skip what it cannot read
            log.warning("simulator.undecodable", topic=record.topic, error=str(exc))
            continue
        if not isinstance(command, ev.GrantCommanded):
            continue
        ack = switch.answer(command)
        envelope = new_envelope(ack, source=f"simulator/{command.system.lower()}", subject=command.request_id)
        sent.append(await enqueue(producer, PERMISSIONS_ACKS.name, envelope))
        log.info("simulator.acked", system=command.system, user_id=command.user_id, outcome=ack.outcome)
    await asyncio.gather(*sent)
    return len(sent)


async def simulate(settings: Settings, stop: asyncio.Event, switch: FailSwitch,
                   group_id: str = "kagi-target-simulator") -> int:
    """Acknowledge grant commands until ``stop`` is set; returns how many were answered."""
    await ensure_topics(settings)
    consumer = make_consumer(settings, *(t.name for t in GRANT_TOPICS),
                             group_id=group_id, enable_auto_commit=True, auto_offset_reset="earliest",
                             session_timeout_ms=int(settings.kafka.session_timeout_s * 1000),
                             rebalance_timeout_ms=int(settings.kafka.rebalance_timeout_s * 1000))
    producer = make_producer(settings, "kagi-target-simulator")
    await consumer.start()
    adapt_fetch_wait(consumer, settings)
    await producer.start()
    answered = 0
    try:
        while not stop.is_set():
            batch = await consumer.getmany(timeout_ms=1000)
            for records in batch.values():
                answered += await acknowledge(producer, records, switch)
    finally:
        await consumer.stop()
        await producer.stop()
    return answered


def main() -> None:
    settings = get_settings()
    configure_logging("target-simulator", settings.log_level)
    stop = asyncio.Event()

    async def run() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await simulate(settings, stop, FailSwitch.from_env())

    asyncio.run(run())


if __name__ == "__main__":
    main()
