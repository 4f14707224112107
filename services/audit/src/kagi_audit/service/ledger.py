"""Append audit events to the keyed chain (once each, via the inbox), publish signed checkpoints, verify."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import msgspec

from kagi_audit.adapters.ledger import Ledger
from kagi_audit.domain.chain import Checkpoint, Verdict, next_link, sign_checkpoint, verify
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import Envelope, new_envelope
from kagi_shared.events.audit import AuditCheckpoint, AuditRecorded
from kagi_shared.mongo import Tx
from kagi_shared.topics import AUDIT_CHECKPOINTS

SOURCE = "kagi/audit"


class AuditService:
    def __init__(self, ledger: Ledger, key: bytes,
                 checkpoints: Callable[[], Awaitable[Sequence[Checkpoint]]], *, clock: Clock = utc_now) -> None:
        self.clock = clock
        self.ledger = ledger
        self.key = key
        self.checkpoints = checkpoints
        """Every signed checkpoint published so far, oldest first (``audit.checkpoints``, outside the database)."""

    async def on_recorded(self, envelope: Envelope, event: AuditRecorded, tx: Tx) -> None:
        entry: dict[str, Any] = msgspec.to_builtins(event)
        entry["eventId"] = envelope.id
        link = next_link(self.key, await self.ledger.last(tx), entry)
        await self.ledger.append(tx, link)
        # In the same transaction as the append (through the outbox): no entry exists without its checkpoint
        # on the way out of the database.
        checkpoint = sign_checkpoint(self.key, link, self.clock())
        tx.publish(AUDIT_CHECKPOINTS.name, new_envelope(
            AuditCheckpoint(entries=checkpoint.entries, head_hash=checkpoint.head_hash, at=checkpoint.at,
                            signature=checkpoint.signature),
            source=SOURCE, subject="ledger", correlation_id=envelope.id))

    async def verify(self) -> Verdict:
        await self.ledger.last()  # a database that is away fails here, before the broker is asked
        checkpoints = await self.checkpoints()  # before the entries: ones appended meanwhile only lengthen it
        links = [link async for link in self.ledger.all()]
        return verify(self.key, links, checkpoints)
