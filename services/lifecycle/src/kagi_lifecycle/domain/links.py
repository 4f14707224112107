"""Single-use links mailed to a person (registration, credential enrolment): when one can no longer be used."""

from __future__ import annotations

from datetime import datetime
from typing import Literal


def spent_or_expired(used_at: datetime | None, expires_at: datetime, now: datetime,
                     voided_at: datetime | None = None) -> Literal["ok", "used", "voided", "expired"]:
    """Used first, then voided, then expired: the holder is told the reason that the newer mails cannot undo."""
    if used_at is not None:
        return "used"
    if voided_at is not None:
        return "voided"
    if expires_at <= now:
        return "expired"
    return "ok"
