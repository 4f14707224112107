"""Delivery records and the retry schedule. Pure."""

from __future__ import annotations

from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal

import msgspec

DeliveryStatus = Literal["queued", "sent", "failed", "dead"]


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    """The id of the event that asked for it: one delivery per event."""
    template: str
    channel: str
    recipient: str
    category: str
    variables: dict[str, str]
    account_id: str | None = None
    status: DeliveryStatus = "queued"
    attempts: int = 0
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None
    correlation_id: str | None = None


def next_attempt(now: datetime, attempts: int, base_s: float, cap_s: float = 300.0) -> datetime:
    """Exponential backoff: base, 2×base, 4×base … capped."""
    return now + timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), cap_s))


def address_problem(recipient: str) -> str | None:
    _, address = parseaddr(recipient)
    if not address or address != recipient.strip() or "@" not in address:
        return f"invalid mail address: {recipient!r}"
    local, _, domain = address.rpartition("@")
    if not local or "." not in domain or any(c.isspace() for c in address):
        return f"invalid mail address: {recipient!r}"
    return None
