"""認証情報登録 (credential enrolment) of B2B IDs (seed consignment-system-guide 5-1 ⑤, 3-1 【注3】).

Pure: the clock is passed in. An ID that receives its first permission gets an account waiting for
enrolment, a one-time URL token (256 bits) and, in a second mail, a 12-character one-time password.
Both are stored only as keyed hashes, are valid a configurable period, are spent together by one
successful enrolment, and are void after too many wrong one-time passwords. Which permissions an ID
holds decides its roles and whether it may log in at all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec

from kagi_lifecycle.domain.links import spent_or_expired

TOKEN_BYTES = 32
# secrets.token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
OTP_LENGTH = 12

Verdict = Literal["ok", "unknown", "expired", "used", "voided"]
Action = Literal["enrol", "reenrol", "roles", "disable", "none"]
IssueReason = Literal["granted", "reissued", "staff"]

ADMIN_SYSTEM = "PMS"
"""Holding the permission-management right (権限管理システム) makes the ID a company admin."""
B2B_ROLES = ("company_admin", "system_user")


class Enrolment(msgspec.Struct, kw_only=True):
    id: str
    """The HMAC of the URL token (the token itself is only in the mail)."""
    account_id: str
    login_id: str
    otp_hash: str
    """The HMAC of the one-time password (``kagi_shared.codes.hash_code``)."""
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    voided_at: datetime | None = None
    void_reason: Literal["otp_failures", "reissued", "disabled"] | None = None
    otp_failures: int = 0


def token_malformed(token: str) -> bool:
    return not TOKEN.match(token)


def judge(enrolment: Enrolment | None, now: datetime) -> Verdict:
    """Why a URL cannot be used, or ``ok``. A re-issued URL counts as void, like one with too many wrong
    one-time passwords: the holder needs the newer mails either way."""
    if enrolment is None:
        return "unknown"
    return spent_or_expired(enrolment.used_at, enrolment.expires_at, now, enrolment.voided_at)


def voids_after(failures: int, limit: int) -> bool:
    """The wrong one-time password numbered ``failures`` voids the URL and the password."""
    return failures >= limit


@dataclass(frozen=True)
class EnrolmentPolicy:
    """SPEC §4 認証情報登録: the mailed URL and one-time password are valid ``ttl_s`` (14 days), single use; the
    ``max_otp_failures``-th wrong one-time password voids both."""

    ttl_s: int = 14 * 86400
    max_otp_failures: int = 5

    def expires_at(self, issued_at: datetime) -> datetime:
        return issued_at + timedelta(seconds=self.ttl_s)

    def voids(self, failures: int) -> bool:
        return voids_after(failures, self.max_otp_failures)

    def remaining(self, failures: int) -> int:
        return self.max_otp_failures - failures


def b2b_roles(permissions: dict[str, str]) -> set[str]:
    """The roles an ID's current permissions give: company admin for PMS, system user for anything else."""
    held = {system for system, value in permissions.items() if value}
    roles = set()
    if ADMIN_SYSTEM in held:
        roles.add("company_admin")
    if held - {ADMIN_SYSTEM}:
        roles.add("system_user")
    return roles


def with_b2b_roles(current: list[str], permissions: dict[str, str]) -> list[str]:
    """``current`` with its B2B roles replaced by those ``permissions`` give (operator, support… kept)."""
    kept = {r for r in current if r not in B2B_ROLES}
    return sorted(kept | b2b_roles(permissions))


def access_action(status: str | None, gained: bool, holds_any: bool) -> Action:
    """What a change of an ID's permissions does to its account.

    ``status`` is the account's (None: no account yet); ``gained`` whether this change gave the ID a system
    it did not hold; ``holds_any`` whether it holds anything after it. Only a grant brings a disabled or
    purged ID back (as a fresh enrolment, seed 5-7: a purged ID is registered again by a new request); the
    last permission going away disables it at once.
    """
    if not holds_any:
        return "disable" if status in ("active", "locked", "pending_enrolment") else "none"
    if status is None:
        return "enrol" if gained else "none"
    if status in ("disabled", "purged"):
        return "reenrol" if gained else "none"
    if status == "withdrawn":
        return "none"
    return "roles"
