"""Composition root of the audit service."""

from __future__ import annotations

from dataclasses import dataclass

from kagi_audit.adapters.checkpoints import CheckpointReader
from kagi_audit.adapters.ledger import Ledger
from kagi_audit.service.ledger import AuditService
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.inbox import DeadLetterSink, InboxConsumer
from kagi_shared.jobs import WorkerPlan
from kagi_shared.mongo import ServiceRoot, Store
from kagi_shared.settings import Settings
from kagi_shared.topics import AUDIT_EVENTS

NAME = "audit"


@dataclass
class Audit(ServiceRoot):
    ledger: Ledger
    service: AuditService

    async def start(self) -> None:
        await self.store.ensure_indexes(self.ledger)


def bootstrap(settings: Settings, store: Store | None = None, clock: Clock = utc_now) -> Audit:
    store = store or Store.of(settings, NAME)
    ledger = Ledger(store)
    key = settings.security.audit_key.encode()
    return Audit(store, ledger, AuditService(ledger, key, CheckpointReader(settings).history, clock=clock))


def consumers(audit: Audit, dead_letter: DeadLetterSink, settings: Settings) -> dict[str, InboxConsumer]:
    """Every audit event, appended to the chain once."""
    return {AUDIT_EVENTS.name: InboxConsumer("audit", audit.store, {AuditRecorded: audit.service.on_recorded},
                                             dead_letter, settings)}


def worker(settings: Settings, store: Store, dead_letter: DeadLetterSink) -> WorkerPlan:
    """The worker: the chain's consumer, the indexes at start; its outbox carries the signed checkpoints."""
    audit = bootstrap(settings, store)
    return WorkerPlan(consumers(audit, dead_letter, settings), tasks=[audit.start])
