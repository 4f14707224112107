"""The step-up check (追加認証, SPEC §2): one-time code to the registered address, then a fresh window.

Pure rules: the caller passes the clock and the stored state and gets a verdict.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from kagi_invite.domain.limits import attempts_left, valid_until, voids_after

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


@dataclass(frozen=True)
class StepUpPolicy:
    """SPEC §2 追加認証: a code mailed to the registered address is valid ``code_ttl_s`` (10 min); the
    ``max_attempts``-th wrong guess voids it; a right one opens a window of ``window_s`` (15 min) for the session
    that verified it, and the user list and every key need that window open."""

    code_ttl_s: int = 600
    max_attempts: int = 5
    window_s: int = 900

    def code_expires_at(self, issued_at: datetime) -> datetime:
        return valid_until(issued_at, self.code_ttl_s)

    def voids(self, attempts: int) -> bool:
        return voids_after(attempts, self.max_attempts)

    def remaining(self, attempts: int) -> int:
        return attempts_left(attempts, self.max_attempts)

    def window_until(self, verified_at: datetime) -> datetime:
        return valid_until(verified_at, self.window_s)

    @staticmethod
    def window_open(until: datetime | None, now: datetime) -> bool:
        """Is the session's step-up window (its end ``until``, None: never verified) open at ``now``?"""
        return until is not None and until > now
