"""Attempt budgets and validity windows shared by invite's policies (keys, links, step-up and SMS codes)."""

from __future__ import annotations

from datetime import datetime, timedelta


def voids_after(attempts: int, max_attempts: int) -> bool:
    """The attempt numbered ``max_attempts`` uses the budget up."""
    return attempts >= max_attempts


def attempts_left(attempts: int, max_attempts: int) -> int:
    return max(max_attempts - attempts, 0)


def valid_until(start: datetime, ttl_s: int) -> datetime:
    return start + timedelta(seconds=ttl_s)
