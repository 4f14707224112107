"""Audit's worker: appends every audit event to the keyed hash chain, once, and publishes signed checkpoints."""

from __future__ import annotations

from kagi_audit.bootstrap import NAME, bootstrap
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.inbox import InboxConsumer
from kagi_shared.settings import get_settings
from kagi_shared.topics import AUDIT_EVENTS
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    audit = bootstrap(settings, runtime.store)
    runtime.consume(AUDIT_EVENTS.name, InboxConsumer(
        "audit", runtime.store, {AuditRecorded: audit.service.on_recorded}, runtime.dead_letter, settings))

    async def prepare() -> None:
        await audit.start()

    runtime.task(prepare)
    runtime.relay_outbox()  # the signed checkpoints
    runtime.run()


if __name__ == "__main__":
    main()
