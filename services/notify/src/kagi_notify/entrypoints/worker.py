"""Notify's worker: records one delivery per request event, dispatches mail and SMS, relays delivery events."""

from __future__ import annotations

from kagi_notify.bootstrap import NAME, worker
from kagi_shared.worker import run_worker

if __name__ == "__main__":
    run_worker(NAME, worker)
