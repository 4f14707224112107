"""Permissions' worker: applies target-system acks, follows lifecycle logins and purges, runs due batches
and ack reminders on a timer (all declared in ``bootstrap.py``), and relays its outbox (grant commands included)."""

from __future__ import annotations

from kagi_permissions.bootstrap import NAME, worker
from kagi_shared.worker import run_worker

if __name__ == "__main__":
    run_worker(NAME, worker)
