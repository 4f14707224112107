"""Append audit events to the chain (once each, via the inbox) and verify it."""

from __future__ import annotations

from typing import Any

import msgspec

from kagi_audit.adapters.ledger import Ledger
from kagi_audit.domain.chain import Verdict, next_link, verify
from kagi_shared.events import Envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.mongo import Tx


class AuditService:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    async def on_recorded(self, envelope: Envelope, event: AuditRecorded, tx: Tx) -> None:
        entry: dict[str, Any] = msgspec.to_builtins(event)
        entry["eventId"] = envelope.id
        last = await self.ledger.last(tx)
        await self.ledger.append(tx, next_link(last, entry))

    async def verify(self) -> Verdict:
        links = [link async for link in self.ledger.all()]
        return verify(links)
