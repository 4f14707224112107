"""The step-up check (追加認証, SPEC §2): one-time code to the registered address, then a fresh window.

Pure rules: the caller passes the clock and the stored state and gets a verdict.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import msgspec

CodeStatus = Literal["active", "used", "voided", "replaced"]
Verdict = Literal["ok", "wrong", "expired", "used", "voided", "replaced"]


class StepUpCode(msgspec.Struct, kw_only=True):
    id: str
    account_id: str
    code_hash: str
    issued_at: datetime
    expires_at: datetime
    status: CodeStatus = "active"
    attempts: int = 0


def judge(code: StepUpCode, matches: bool, now: datetime) -> Verdict:
    """What a verification attempt means, in the order a person would want to hear it."""
    if code.status != "active":
        return code.status
    if now >= code.expires_at:
        return "expired"
    return "ok" if matches else "wrong"


def voids_after(attempts: int, max_attempts: int) -> bool:
    return attempts >= max_attempts


def valid_until(verified_at: datetime, window_s: int) -> datetime:
    return verified_at + timedelta(seconds=window_s)
