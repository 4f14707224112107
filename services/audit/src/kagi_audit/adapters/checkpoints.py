"""The latest signed checkpoint, read from the end of ``audit.checkpoints`` (outside the database)."""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from kagi_audit.domain.chain import Checkpoint
from kagi_shared.events import decode
from kagi_shared.events.audit import AuditCheckpoint
from kagi_shared.kafka import make_consumer, partitions_of
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_CHECKPOINTS


class CheckpointReader:
    def __init__(self, settings: Settings, timeout_s: float = 10.0) -> None:
        self.settings = settings
        self.timeout_s = timeout_s

    async def latest(self) -> Checkpoint | None:
        consumer = make_consumer(self.settings, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            partition = TopicPartition(AUDIT_CHECKPOINTS.name, 0)
            await partitions_of(consumer, AUDIT_CHECKPOINTS.name)  # every worker creates the topic at start
            end = (await consumer.end_offsets([partition]))[partition]
            if end == 0:
                return None
            consumer.assign([partition])
            consumer.seek(partition, end - 1)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while loop.time() < deadline:
                batch = await consumer.getmany(partition, timeout_ms=500)
                for record in batch.get(partition, []):
                    if record.offset == end - 1:
                        _, event = decode(record.value)
                        assert isinstance(event, AuditCheckpoint)
                        return Checkpoint(entries=event.entries, head_hash=event.head_hash, at=event.at,
                                          signature=event.signature)
            raise TimeoutError("audit.checkpoints: the latest checkpoint could not be read")
        finally:
            await consumer.stop()
