"""A service's worker process: faust agents over the inbox consumer, plus the outbox relay.

``WorkerRuntime`` owns the clients of one worker. A service's ``bootstrap.py`` declares what its worker
does (a ``WorkerPlan``: consumers by topic, scheduled ``Job``s, tasks); its ``worker.py`` entry point hands that
declaration to ``run_worker``, which registers it and runs the worker.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, get_args

import faust
from aiokafka import AIOKafkaProducer
from prometheus_client import REGISTRY

from kagi_shared.consumer_offsets import ConsumerOffsets
from kagi_shared.faust_app import make_faust_app
from kagi_shared.inbox import InboxConsumer, Message, Outcome
from kagi_shared.jobs import BATCH_WITHIN_S, Crontab, Job, PlanWorker, Run, run_every
from kagi_shared.kafka import ensure_topics, make_producer
from kagi_shared.logging import configure_logging, get_logger
from kagi_shared.metrics import EVENTS_CONSUMED, METRICS_OFFSET, OUTBOX_PUBLISHED, name_process, prime
from kagi_shared.mongo import Store
from kagi_shared.outbox import OutboxRelay
from kagi_shared.settings import Settings, get_settings, require_secrets
from kagi_shared.tracing import configure_tracing
from kagi_shared.worker_probes import WorkerProbes, serve_probes

log = get_logger(__name__)


def ready_file(settings: Settings, service: str) -> Path:
    """Written once the worker has joined its consumer group: what ``kagi up`` and the tests wait for."""
    return settings.var_path / "run" / f"{service}-worker.ready"


async def take_batches(stream: Any, most: int, within: float) -> AsyncIterator[list[faust.EventT[bytes]]]:
    """Events of ``stream`` up to ``most`` at a time, a batch ``within`` seconds after its first event at the latest.

    faust's ``Stream.take_events`` does the same but wakes every ``within`` seconds whether or not anything came,
    which kept an idle worker's loop busy (notify: six topics × 20 wakes a second). This one sleeps until an
    event arrives. Offsets are acknowledged as there: only once the consumer is done with a batch (acks are
    turned off while it buffers), so a crash mid-batch redelivers it and the inbox drops what was already handled.
    """
    events: list[faust.EventT[bytes]] = []
    arrived = asyncio.Event()
    full = asyncio.Event()
    taken = asyncio.Event()
    consuming: asyncio.Future[None] | None = None
    enable_acks = stream.enable_acks

    async def add(value: bytes) -> bytes:
        nonlocal consuming
        try:
            if consuming is not None:  # the consumer has the current batch: the next one starts after it
                try:
                    await consuming
                finally:
                    consuming = None
            event = stream.current_event
            if event is None:
                raise RuntimeError("batch buffer found no current event")
            events.append(event)
            arrived.set()
            if len(events) >= most:
                full.set()
                taken.clear()
                await stream.wait(taken)  # never more than ``most`` in a batch
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            stream.log.exception("Error adding to batch buffer: %r", exc)
            await stream.crash(exc)
        return value

    stream.enable_acks = False
    stream.add_processor(add)
    stream._enable_passive(aiter(stream.channel))  # faust's own way to drain a stream into a processor
    try:
        while not stream.should_stop:
            if await stream.wait_for_stopped(arrived):
                break
            await stream.wait_for_stopped(full, timeout=within)
            if not events:
                continue
            consuming = asyncio.get_running_loop().create_future()
            batch = list(events)
            try:
                yield batch
            finally:
                events.clear()
                arrived.clear()
                for event in batch:
                    await stream.ack(event)
                if not consuming.done():
                    consuming.set_result(None)
                full.clear()
                taken.set()
    finally:
        stream.enable_acks = enable_acks
        stream._processors.remove(add)


def schedule(app: faust.App, job: Job) -> Run:
    """Register ``job`` on ``app``; returns the task faust starts once the worker is up."""
    if isinstance(job, Crontab):
        registered: Run = app.crontab(job.cron, timezone=job.timezone)(job.run)
        return registered

    async def every() -> None:
        await run_every(job)

    every.__qualname__ = every.__name__ = job.name
    app.task(every)
    return every


class WorkerRuntime:
    def __init__(self, service: str, settings: Settings) -> None:
        self.service = service
        self.settings = settings
        self.app = make_faust_app(service, settings)
        self.store = Store.of(settings, service)
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

    def consume(self, topic: str, consumer: InboxConsumer, *, batch: int = 1, within: float = BATCH_WITHIN_S) -> None:
        """Feed every message of ``topic`` to ``consumer``; faust commits offsets as they are handled.

        With ``batch`` > 1 the messages go to ``process_many`` up to ``batch`` at a time, after at most
        ``within`` seconds of waiting for a batch to fill; their offsets are committed once it is done.
        """
        channel = self.app.topic(topic, key_type=bytes, value_type=bytes)
        prime(EVENTS_CONSUMED, *((consumer.name, topic, outcome) for outcome in get_args(Outcome)))

        async def agent(stream: faust.StreamT[bytes]) -> None:
            if batch > 1:
                async for events in take_batches(stream, batch, within):
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

    def schedule(self, job: Job) -> None:
        schedule(self.app, job)

    def relay_outbox(self) -> None:
        async def relay() -> None:
            await self.store.ensure_outbox_indexes()
            stop = asyncio.Event()
            worker = OutboxRelay(self.store, await self.producer(), self.settings)
            prime(OUTBOX_PUBLISHED, (self.store.db.name,))
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
        REGISTRY.register(ConsumerOffsets(self.app, f"kagi-{self.service}"))

        async def beat() -> None:
            probes.beat()

        self.app.timer(interval=max(1.0, probes.max_silence_s / 6), name=f"kagi-{self.service}.beat")(beat)
        base = self.settings.ports.worker_metrics_base
        if base:
            port = base + METRICS_OFFSET.get(self.service, 0)
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
        name_process(f"{self.service}-worker")
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


def run_worker(service: str, plan: PlanWorker) -> None:
    """The worker process of ``service`` (``python -m kagi_<service>.entrypoints.worker``): settings read once,
    the plan its ``bootstrap.py`` declares registered, the outbox relayed; returns when the worker stops."""
    settings = get_settings()
    runtime = WorkerRuntime(service, settings)
    declared = plan(settings, runtime.store, runtime.dead_letter)
    for topic, consumer in declared.consumers.items():
        runtime.consume(topic, consumer, batch=declared.batches.get(topic, 1), within=declared.batch_within_s)
    for job in declared.jobs:
        runtime.schedule(job)
    for task in declared.tasks:
        runtime.task(task)
    runtime.relay_outbox()
    runtime.run()
