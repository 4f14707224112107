"""Invite's worker: contract data from ``contracts.upserted``, lifecycle purges (consumers declared in
``bootstrap.py``), and the outbox relay."""

from __future__ import annotations

from kagi_invite.bootstrap import NAME, worker
from kagi_shared.worker import run_worker

if __name__ == "__main__":
    run_worker(NAME, worker)
