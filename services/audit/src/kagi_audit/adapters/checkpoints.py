"""The signed checkpoints, read from ``audit.checkpoints`` (outside the database), oldest first.

Verification needs all of them, not the latest alone: the latest shows a tail that was cut off, the earlier ones
a tail that was cut off and then written again by new events (the same length, another head). The topic keeps
them for ten years; one small record per audit entry, read in batches, costs about what reading the ledger does.
"""

from __future__ import annotations

import asyncio

from aiokafka import TopicPartition

from kagi_audit.domain.chain import Checkpoint
from kagi_shared.events import decode
from kagi_shared.events.audit import AuditCheckpoint
from kagi_shared.kafka import log_ends, make_consumer, partitions_of
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_CHECKPOINTS


class CheckpointReader:
    def __init__(self, settings: Settings, timeout_s: float = 30.0, topic: str = AUDIT_CHECKPOINTS.name) -> None:
        self.settings = settings
        self.timeout_s = timeout_s
        """How long reading the history may go without a record arriving."""
        self.topic = topic

    async def history(self) -> list[Checkpoint]:
        consumer = make_consumer(self.settings, enable_auto_commit=False, group_id=None)
        await consumer.start()
        try:
            partition = TopicPartition(self.topic, 0)
            await partitions_of(consumer, self.topic)  # every worker creates the topic at start
            start = (await consumer.beginning_offsets([partition]))[partition]
            # Read from the log: the embedded broker reports the end short of a last batch of several checkpoints,
            # and those newest ones are what shows a tail cut off a moment ago.
            end = (await log_ends(consumer, [partition], self.timeout_s))[partition]
            if end <= start:
                return []
            consumer.assign([partition])
            consumer.seek(partition, start)
            found: list[Checkpoint] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.timeout_s
            while loop.time() < deadline:
                batch = await consumer.getmany(partition, timeout_ms=500, max_records=10_000)
                for record in batch.get(partition, []):
                    if record.offset >= end:
                        continue
                    _, event = decode(record.value)
                    assert isinstance(event, AuditCheckpoint)
                    found.append(Checkpoint(entries=event.entries, head_hash=event.head_hash, at=event.at,
                                            signature=event.signature))
                    deadline = loop.time() + self.timeout_s
                    if record.offset == end - 1:
                        return found
            raise TimeoutError(f"{self.topic}: read {len(found)} of the checkpoints up to offset {end}")
        finally:
            await consumer.stop()
