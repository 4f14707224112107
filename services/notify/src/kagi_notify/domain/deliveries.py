"""Delivery records and the retry schedule. Pure."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from email.utils import parseaddr
from typing import Literal

import msgspec

DeliveryStatus = Literal["queued", "sent", "failed", "dead", "skipped"]
"""``skipped``: recorded, never sent (the recipient switched the category off)."""


class Delivery(msgspec.Struct, kw_only=True):
    id: str
    """The id of the event that asked for it (one delivery per event), or a new id for notify's own mails."""
    template: str
    channel: str
    recipient: str
    category: str
    variables: dict[str, str]
    """What the template needs, its secret ones (codes, links) as ``***``: those wait in ``sealed``."""
    sealed: str = ""
    """The template's secret variables while the delivery waits to be sent (an SMTP outage can last hours),
    sealed under the notify key to this row; opened only to render, emptied once it is sent or dead."""
    account_id: str | None = None
    status: DeliveryStatus = "queued"
    attempts: int = 0
    next_attempt_at: datetime
    created_at: datetime
    sent_at: datetime | None = None
    last_error: str | None = None
    correlation_id: str | None = None
    claim: str | None = None
    """The dispatcher run that holds it (with ``next_attempt_at`` pushed out while it tries)."""


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


_PHONE = re.compile(r"^\+?[0-9]{10,15}$")


def phone_problem(recipient: str) -> str | None:
    """Japanese mobile numbers as people write them (090-1234-5678) or E.164 (+819012345678)."""
    digits = recipient.strip().replace("-", "")
    if not _PHONE.match(digits) or (not digits.startswith("+") and not digits.startswith("0")):
        return f"invalid phone number: {recipient!r}"
    return None


def recipient_problem(channel: str, recipient: str) -> str | None:
    if channel == "sms":
        return phone_problem(recipient)
    return address_problem(recipient)
