"""Lifecycle's worker: the daily inactivity sweep (faust crontab), external logins from ``auth.logins``,
withdrawals (退会) from ``invite.events``, permission changes from ``permissions.events``
(認証情報登録 and disabling), the outbox. What it consumes and schedules is declared in ``bootstrap.py``."""

from __future__ import annotations

from kagi_lifecycle.bootstrap import NAME, worker
from kagi_shared.worker import run_worker

if __name__ == "__main__":
    run_worker(NAME, worker)
