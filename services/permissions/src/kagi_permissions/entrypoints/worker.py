"""Permissions' worker: applies target-system acks, follows lifecycle logins and purges, runs due batches
and ack reminders on a timer (all declared in ``bootstrap.py``), and relays its outbox (grant commands included)."""

from __future__ import annotations

from kagi_permissions.bootstrap import BATCHED_TOPICS, NAME, bootstrap, consumers, jobs
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    permissions = bootstrap(settings, runtime.store)
    for topic, consumer in consumers(permissions, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer, batch=BATCHED_TOPICS.get(topic, 1))
    for job in jobs(permissions, settings):
        runtime.schedule(job)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
