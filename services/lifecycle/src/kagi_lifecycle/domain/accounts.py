"""Accounts and the login rules (SPEC §4). Pure: no I/O, the clock is passed in."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import msgspec

Status = Literal["active", "locked", "purged", "withdrawn", "pending_enrolment", "disabled"]
Role = Literal["owner", "viewer", "company_admin", "operator", "target_system", "support", "system_user"]
ROLES: tuple[str, ...] = ("owner", "viewer", "company_admin", "operator", "target_system", "support",
                          "system_user")

# SPEC §3 user ID rules: local part of ASCII letters, digits and - _ ~ . $ & ' ` ^ =; domain letters, digits, - and .
LOGIN_ID = re.compile(r"^[A-Za-z0-9\-_~.$&'`^=]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)+$")


class Account(msgspec.Struct, kw_only=True):
    id: str
    login_id: str
    email: str
    password_hash: str
    roles: list[str]
    status: Status = "active"
    lock_reason: str | None = None
    issued_at: datetime
    last_login_at: datetime | None = None
    password_changed_at: datetime
    failed_logins: int = 0
    locked_at: datetime | None = None
    session_version: int = 0
    """Bumped when sessions must end (lock, purge, password change); tokens carry it as ``sv``."""
    ladder_stage: str | None = None
    """The last inactivity stage applied in the current period (None: none yet)."""
    next_stage: str | None = None
    next_stage_at: datetime | None = None
    """When ``next_stage`` becomes due (indexed: the sweep reads only due accounts)."""
    secret_question: str | None = None
    secret_answer_hash: str | None = None
    """argon2id hash of the normalised answer (``domain.secret_question.normalise_answer``)."""
    secret_failures: int = 0
    """Consecutive wrong answers to the secret question; the threshold locks (reason ``secret_question``)."""
    withdrawn_login_id: str | None = None
    """退会: the ID the account had; ``login_id`` then holds a placeholder so the address can register again."""
    withdrawn_at: datetime | None = None
    totp_secret: str | None = None
    """The TOTP seed of a privileged account, sealed (``adapters.secret_box``); None: not enrolled."""
    totp_pending: str | None = None
    """A seed handed out by enrolment and not yet confirmed with a code."""
    totp_last_step: int = 0
    """The time step of the last code used: a code is never accepted twice."""
    name: str | None = None
    """The holder's name, where one is known (operator and support accounts)."""
    enrolled_at: datetime | None = None
    """認証情報登録 completed (B2B IDs); None for an ID still waiting, or for accounts made otherwise."""
    disabled_reason: str | None = None


def canonical_login_id(login_id: str) -> str:
    """IDs are unique case-insensitively: compare and store them lower-cased."""
    return login_id.strip().lower()


def login_id_problem(login_id: str) -> str | None:
    if len(login_id) > 254:
        return "254 文字以内で入力してください。"
    if not LOGIN_ID.match(login_id):
        return "メールアドレスの形式で、使用できる文字のみを入力してください。"
    return None


class AccountExists(Exception):
    """The login ID is already taken (the repository's unique index said so)."""

    def __init__(self, login_id: str) -> None:
        super().__init__(login_id)
        self.login_id = login_id


def should_lock(failed_logins: int, threshold: int) -> bool:
    return failed_logins >= threshold


@dataclass(frozen=True)
class LockoutPolicy:
    """SPEC §4: the ``threshold``-th consecutive wrong password (or secret answer) locks the ID until an operator
    lifts it; for privileged roles (``totp_roles``) a failed-login lock ends by itself after ``privileged_lock_s``
    (0: never), so nobody can lock every operator out."""

    threshold: int = 5
    privileged_lock_s: int = 900

    def locks(self, consecutive_failures: int) -> bool:
        """Does this many consecutive failures lock the account?"""
        return should_lock(consecutive_failures, self.threshold)

    def remaining(self, consecutive_failures: int) -> int:
        """Wrong attempts left before the lock."""
        return max(0, self.threshold - consecutive_failures)

    def privileged_lock_over(self, locked_at: datetime | None, now: datetime) -> bool:
        """Has a privileged account's failed-login lock run out by ``now``?"""
        return (self.privileged_lock_s > 0 and locked_at is not None
                and now >= locked_at + timedelta(seconds=self.privileged_lock_s))


class LoginReportDecision(msgspec.Struct, frozen=True):
    record: bool
    """Publish ``LoggedIn``: every distinct report is a login that happened, late or not (replays never
    reach this point: the inbox drops a repeated event id)."""
    moves_last_login: bool
    """Last login (the ladder's base) only moves forward, so a late report leaves the period alone."""


def judge_login_report(status: Status, last_login_at: datetime | None, at: datetime) -> LoginReportDecision:
    """An external identity provider reports a login at ``at`` (SPEC §4: external logins count)."""
    if status == "purged":
        return LoginReportDecision(record=False, moves_last_login=False)
    return LoginReportDecision(record=True, moves_last_login=last_login_at is None or at > last_login_at)
