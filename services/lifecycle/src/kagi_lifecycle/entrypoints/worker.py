"""Lifecycle's worker: the daily inactivity sweep (faust crontab), external logins from ``auth.logins``,
withdrawals (退会) from ``invite.events``, permission changes from ``permissions.events``
(認証情報登録 and disabling), the outbox. What it consumes and schedules is declared in ``bootstrap.py``."""

from __future__ import annotations

from kagi_lifecycle.bootstrap import NAME, bootstrap, consumers, jobs
from kagi_shared.settings import get_settings
from kagi_shared.worker import WorkerRuntime


def main() -> None:
    settings = get_settings()
    runtime = WorkerRuntime(NAME, settings)
    lifecycle = bootstrap(settings, runtime.store)
    for topic, consumer in consumers(lifecycle, runtime.dead_letter, settings).items():
        runtime.consume(topic, consumer)
    for job in jobs(lifecycle, settings):
        runtime.schedule(job)
    runtime.relay_outbox()
    runtime.run()


if __name__ == "__main__":
    main()
