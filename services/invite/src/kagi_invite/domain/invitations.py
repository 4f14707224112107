"""Account invitation keys (招待コード / 認証キー), confirmation links and co-users (SPEC §2).

Pure rules: the caller passes the clock and the stored state and gets a verdict.

A redemption is two-phase because the new account is created by another service in between:
``reserve`` holds the key (and the link) for a short time, ``complete`` makes the co-user, and
``release`` — or simply the reservation running out — gives the key back. So a failure between
the phases leaves a key that is pending again, never one that is half used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import msgspec

from kagi_invite.domain.limits import attempts_left, valid_until, voids_after
from kagi_shared import codes
from kagi_shared.problems import Problem

KEY_LENGTH = 12
MAX_TYPED_LENGTH = 64

KeyStatus = Literal["pending", "reserved", "redeemed", "revoked", "voided"]
ShownStatus = Literal["pending", "redeemed", "expired", "revoked", "voided"]
KeyVerdict = Literal["ok", "expired", "redeemed", "revoked", "voided", "busy"]
LinkStatus = Literal["active", "reserved", "used", "voided"]
LinkVerdict = Literal["ok", "expired", "used", "voided", "busy"]
AccountType = Literal["email_id", "external_id"]


class AlreadyMember(Exception):
    """The account is already a co-user of this owner."""


class InvitationKey(msgspec.Struct, kw_only=True):
    id: str
    owner_id: str
    key_hash: str
    issued_at: datetime
    expires_at: datetime
    status: KeyStatus = "pending"
    attempts: int = 0
    reservation_id: str | None = None
    reserved_until: datetime | None = None
    redeemed_by: str | None = None
    redeemed_login_id: str | None = None
    redeemed_at: datetime | None = None


class ConfirmationLink(msgspec.Struct, kw_only=True):
    id: str
    email: str
    token_hash: str
    issued_at: datetime
    expires_at: datetime
    status: LinkStatus = "active"
    wrong_keys: int = 0
    reservation_id: str | None = None
    reserved_until: datetime | None = None


class CoUser(msgspec.Struct, kw_only=True):
    owner_id: str
    owner_login_id: str = ""
    account_id: str
    login_id: str
    email: str
    account_type: AccountType = "email_id"
    external_ids: list[str] = msgspec.field(default_factory=list)
    key_id: str
    added_at: datetime


def key_format_problem(typed: str) -> str | None:
    """Why a typed key cannot be a key at all (checked before any lookup)."""
    if len(typed) > MAX_TYPED_LENGTH:
        return f"{MAX_TYPED_LENGTH} 文字以内で入力してください。"
    key = codes.normalize(typed)
    if not key:
        return "認証キーを入力してください。"
    if len(key) != KEY_LENGTH:
        return f"認証キーは {KEY_LENGTH} 文字です。"
    if any(ch not in codes.UNAMBIGUOUS_ALPHABET for ch in key):
        return "認証キーに使用されない文字が含まれています。"
    return None


def held(status: str, reserved_until: datetime | None, now: datetime) -> bool:
    """A reservation only holds while it lasts: an abandoned one frees the key or link again."""
    return status == "reserved" and reserved_until is not None and now < reserved_until


def shown_status(key: InvitationKey, now: datetime) -> ShownStatus:
    """What the owner sees: a key being redeemed is still pending until the redemption completes."""
    if key.status in ("redeemed", "revoked", "voided"):
        return key.status
    return "expired" if now >= key.expires_at else "pending"


def _open_verdict(status: str, expires_at: datetime, reserved_until: datetime | None,
                  now: datetime) -> Literal["ok", "expired", "busy"]:
    """A key or link that is not finished: expired, held by a redemption in progress, or usable."""
    if now >= expires_at:
        return "expired"
    if held(status, reserved_until, now):
        return "busy"
    return "ok"


def judge_key(key: InvitationKey, now: datetime) -> KeyVerdict:
    if key.status in ("redeemed", "revoked", "voided"):
        return key.status
    return _open_verdict(key.status, key.expires_at, key.reserved_until, now)


def judge_link(link: ConfirmationLink, now: datetime) -> LinkVerdict:
    if link.status in ("used", "voided"):
        return link.status
    return _open_verdict(link.status, link.expires_at, link.reserved_until, now)


def can_join(owner_id: str, account_id: str, already_member: bool) -> Literal["ok", "own_key", "already_member"]:
    if owner_id == account_id:
        return "own_key"
    return "already_member" if already_member else "ok"


def retry_after_s(oldest_hit: datetime, window_s: int, now: datetime) -> int:
    """Seconds until the oldest hit in a sliding window leaves it (at least 1)."""
    return max(1, int((oldest_hit - now).total_seconds() + window_s + 0.999))


@dataclass(frozen=True)
class InvitationPolicy:
    """SPEC §2 招待: an owner's invitation key is valid ``key_ttl_s`` (60 min) and dies after ``key_max_attempts``
    failed logins on redemption; the confirmation link mailed to the invitee is valid ``link_ttl_s`` (24 h) and
    voided by the ``link_max_wrong_keys``-th wrong key; a redemption holds key and link ``reservation_ttl_s``."""

    key_ttl_s: int = 3600
    key_max_attempts: int = 5
    link_ttl_s: int = 86400
    link_max_wrong_keys: int = 5
    reservation_ttl_s: int = 120

    def key_expires_at(self, issued_at: datetime) -> datetime:
        return valid_until(issued_at, self.key_ttl_s)

    def link_expires_at(self, issued_at: datetime) -> datetime:
        return valid_until(issued_at, self.link_ttl_s)

    def reserved_until(self, now: datetime) -> datetime:
        return valid_until(now, self.reservation_ttl_s)

    def link_voided_by(self, wrong_keys: int) -> bool:
        return voids_after(wrong_keys, self.link_max_wrong_keys)

    def wrong_keys_left(self, wrong_keys: int) -> int:
        return attempts_left(wrong_keys, self.link_max_wrong_keys)

    def key_voided_by(self, failed_logins: int) -> bool:
        return voids_after(failed_logins, self.key_max_attempts)


# -- the account a redemption binds the key to (lifecycle's, as invite sees it) ---------------------------------
class AccountRef(msgspec.Struct, frozen=True, kw_only=True):
    """The account a redemption binds the key to."""

    account_id: str
    login_id: str
    email: str
    new_account: bool = False


class AccountInfo(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    login_id: str
    email: str
    issued_at: datetime


class LoginRefused(Exception):
    """The existing account's ID or password is wrong (lifecycle answered 401)."""

    def __init__(self, problem: Problem) -> None:  # lifecycle's refusal, kept for the invitee
        super().__init__(problem.code)
        self.problem = problem
