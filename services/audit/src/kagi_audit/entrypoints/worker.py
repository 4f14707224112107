"""Audit's worker: appends every audit event to the keyed hash chain, once, and publishes signed checkpoints."""

from __future__ import annotations

from kagi_audit.bootstrap import NAME, bootstrap, consumers
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    audit = bootstrap(settings, runtime.store)
    for topic, consumer in consumers(audit, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer)
    runtime.task(audit.start)
    runtime.relay_outbox()  # the signed checkpoints
    runtime.run()


if __name__ == "__main__":
    main()
