"""Audit's worker: appends every audit event to the keyed hash chain, once, and publishes signed checkpoints."""

from __future__ import annotations

from kagi_audit.bootstrap import NAME, worker
from kagi_shared.worker import run_worker

if __name__ == "__main__":
    run_worker(NAME, worker)
