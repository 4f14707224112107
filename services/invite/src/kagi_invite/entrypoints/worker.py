"""Invite's worker: contract data from ``contracts.upserted``, lifecycle purges (consumers declared in
``bootstrap.py``), and the outbox relay."""

from __future__ import annotations

from kagi_invite.bootstrap import NAME, bootstrap, consumers
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    invite = bootstrap(settings, runtime.store)
    for topic, consumer in consumers(invite, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer)
    runtime.task(invite.start)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
