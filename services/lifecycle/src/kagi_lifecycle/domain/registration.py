"""Self-registration with email verification (water portal, SPEC §2 and §4). Pure: the clock is passed in.

The flow: an address → a single-use link mailed to it → the link's token and a password → an account
whose ID is that address. Asking with an address that already has an account answers the same and
mails that account's owner instead, so the answer never tells whether an address is registered.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

import msgspec

from kagi_lifecycle.domain.links import spent_or_expired

TOKEN_BYTES = 32
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")

Verdict = Literal["ok", "malformed", "unknown", "expired", "used"]


class Registration(msgspec.Struct, kw_only=True):
    id: str
    """The HMAC of the mailed token (only the hash is stored)."""
    registration_id: str
    """A stable id for events and logs (the token hash never leaves the database)."""
    email: str
    login_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    replaced: bool = False


def token_malformed(token: str) -> bool:
    return not TOKEN.match(token)


def judge(registration: Registration | None, now: datetime) -> Verdict:
    """Why a link cannot be used, or ``ok``; a link replaced by a newer request counts as used."""
    if registration is None:
        return "unknown"
    verdict = spent_or_expired(registration.used_at, registration.expires_at, now)
    assert verdict != "voided"  # a registration link is never voided, only replaced (which counts as used)
    return verdict
