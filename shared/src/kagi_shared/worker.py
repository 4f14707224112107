"""A service's worker process: faust agents over the inbox consumer, plus the outbox relay.

``WorkerRuntime`` owns the clients of one worker; a service's ``worker.py`` entry point
registers its consumers and calls ``run()``.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import faust
from aiokafka import AIOKafkaProducer

from kagi_shared.faust_app import make_faust_app
from kagi_shared.inbox import InboxConsumer, Message
from kagi_shared.kafka import ensure_topics, make_producer
from kagi_shared.logging import configure_logging, get_logger
from kagi_shared.mongo import Store, database_name, make_client
from kagi_shared.outbox import OutboxRelay
from kagi_shared.settings import Settings, require_secrets
from kagi_shared.tracing import configure_tracing
from kagi_shared.worker_probes import WorkerProbes, serve_probes

log = get_logger(__name__)


def ready_file(settings: Settings, service: str) -> Path:
    """Written once the worker has joined its consumer group: what ``kagi up`` and the tests wait for."""
    return settings.var_path / "run" / f"{service}-worker.ready"


class WorkerRuntime:
    def __init__(self, service: str, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.app = make_faust_app(service, settings)
        self.store = Store(make_client(settings), database_name(settings, service))
        self._producer: AIOKafkaProducer | None = None
        self._producer_lock = asyncio.Lock()

    async def producer(self) -> AIOKafkaProducer:
        async with self._producer_lock:
            if self._producer is None:
                producer = make_producer(self.settings, f"kagi-{self.service}-worker")
                await producer.start()
                self._producer = producer
        return self._producer

    async def dead_letter(self, topic: str, key: bytes | None, value: bytes,
                          headers: list[tuple[str, bytes]]) -> None:
        producer = await self.producer()
        await producer.send_and_wait(topic, value, key=key, headers=headers)

    def consume(self, topic: str, consumer: InboxConsumer, *, batch: int = 1, within: float = 0.2) -> None:
        """Feed every message of ``topic`` to ``consumer``; faust commits offsets as they are handled.

        With ``batch`` > 1 the messages go to ``process_many`` up to ``batch`` at a time, after at most
        ``within`` seconds of waiting for a batch to fill; their offsets are committed once it is done.
        """
        channel = self.app.topic(topic, key_type=bytes, value_type=bytes)

        async def agent(stream: faust.StreamT[bytes]) -> None:
            if batch > 1:
                # take_events is on faust's Stream, not on the StreamT protocol agents are typed with
                async for events in cast("faust.Stream[bytes]", stream).take_events(batch, within=within):
                    await consumer.process_many([
                        Message(e.message.topic, e.message.key, e.message.value or b"", e.message.partition,
                                e.message.offset) for e in events])
                return
            async for event in stream.events():
                message = event.message
                await consumer.process(message.topic, message.key, message.value,
                                       partition=message.partition, offset=message.offset)

        agent.__name__ = f"consume_{topic.replace('.', '_')}"
        agent.__qualname__ = agent.__name__
        self.app.agent(channel, name=f"kagi-{self.service}.{agent.__name__}")(agent)

    def task(self, fn: Callable[[], Awaitable[None]]) -> None:
        self.app.task(fn)

    def relay_outbox(self) -> None:
        async def relay() -> None:
            await self.store.ensure_outbox_indexes()
            stop = asyncio.Event()
            worker = OutboxRelay(self.store, await self.producer(), self.settings)
            try:
                await worker.run(stop)
            finally:
                stop.set()
                await worker.release_lease()

        relay.__qualname__ = f"kagi-{self.service}.relay"
        self.app.task(relay)

    def _serve_probes(self) -> WorkerProbes:
        """``/health``, ``/ready`` and ``/metrics`` on the worker's metrics port (Kubernetes probes it there)."""
        probes = WorkerProbes(self.settings.consumer.liveness_silence_s)

        async def beat() -> None:
            probes.beat()

        self.app.timer(interval=max(1.0, probes.max_silence_s / 6), name=f"kagi-{self.service}.beat")(beat)
        offsets = {"lifecycle": 1, "invite": 2, "permissions": 3, "notify": 4, "audit": 5}
        base = self.settings.ports.worker_metrics_base
        if base:
            port = base + offsets.get(self.service, 0)
            try:
                serve_probes(probes, self.settings.http.host, port)
            except OSError as exc:  # locally two checkouts may collide; in a pod the port is ours
                log.warning("worker.probe_port_busy", port=port, error=str(exc))
        return probes

    def ready_file(self) -> Path:
        return ready_file(self.settings, self.service)

    def run(self) -> None:
        require_secrets(self.settings, f"{self.service}-worker")
        configure_logging(f"{self.service}-worker", self.settings.log_level)
        configure_tracing(f"{self.service}-worker", self.settings)
        marker = self.ready_file()
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.unlink(missing_ok=True)
        (self.settings.var_path / "faust").mkdir(parents=True, exist_ok=True)

        probes = self._serve_probes()

        @self.app.on_partitions_assigned.connect
        async def mark_ready(*_: object, **__: object) -> None:
            probes.joined()
            marker.write_text("ready\n")

        # faust runs on the current event loop: create the topics on that same loop first.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        loop.run_until_complete(ensure_topics(self.settings))
        sys.argv = [sys.argv[0], "worker", "--without-web", "--loglevel", "warn"]
        self.app.main()
