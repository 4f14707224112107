"""Admin contact addresses for info-sharing-site notices (seed consignment guide 7-3). Pure.

The operator registers an address provisionally; the address gets a confirmation link valid
for 7 days; opening it makes the address active. Only a keyed hash of the link's token is
stored, so the database alone cannot confirm anything. Expired links are re-sent by the
operator with a fresh token; the old one stops working.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from typing import Literal

import msgspec

ContactStatus = Literal["provisional", "active"]
Verdict = Literal["ok", "expired", "invalid"]


class ContactExists(Exception):
    """The address is already registered as an admin contact."""


class AdminContact(msgspec.Struct, kw_only=True):
    id: str
    email: str
    company: str | None = None
    status: ContactStatus = "provisional"
    token_hash: str | None = None
    link_expires_at: datetime | None = None
    created_at: datetime
    confirmed_at: datetime | None = None
    links_sent: int = 0


def new_token() -> str:
    """256 bits from the CSPRNG, URL-safe: the only copy goes out in the mail."""
    return secrets.token_urlsafe(32)


def hash_token(token: str, pepper: str) -> str:
    return hmac.new(pepper.encode(), token.strip().encode(), hashlib.sha256).hexdigest()


def link_expiry(now: datetime, ttl_days: int) -> datetime:
    return now + timedelta(days=ttl_days)


def judge(contact: AdminContact | None, now: datetime) -> Verdict:
    """What a confirmation link does: a used, replaced or unknown token is ``invalid``."""
    if contact is None or contact.status != "provisional" or contact.link_expires_at is None:
        return "invalid"
    if now >= contact.link_expires_at:
        return "expired"
    return "ok"


def confirm_url(portal_url: str, token: str) -> str:
    return f"{portal_url.rstrip('/')}/admin-contacts/confirm?token={token}"
