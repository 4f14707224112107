"""Events of the lifecycle service (topic ``lifecycle.events``, key: the account id)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from kagi_shared.events.envelope import Event, register

LockReason = Literal["failed_logins", "secret_question", "inactivity", "operator"]


class AccountCreated(Event, frozen=True, tag="kagi.lifecycle.account_created"):
    account_id: str
    login_id: str
    email: str
    roles: list[str]
    issued_at: datetime


class LoggedIn(Event, frozen=True, tag="kagi.lifecycle.logged_in"):
    account_id: str
    at: datetime
    via: str = "kagi"


class LoginFailed(Event, frozen=True, tag="kagi.lifecycle.login_failed"):
    account_id: str
    at: datetime
    consecutive_failures: int


class AccountLocked(Event, frozen=True, tag="kagi.lifecycle.account_locked"):
    account_id: str
    email: str
    reason: LockReason
    at: datetime


register(AccountCreated, LoggedIn, LoginFailed, AccountLocked)
