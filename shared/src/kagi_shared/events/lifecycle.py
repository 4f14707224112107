"""Events of the lifecycle service (topic ``lifecycle.events``, key: the account id)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from kagi_shared.events.envelope import Event, register

LockReason = Literal["failed_logins", "secret_question", "inactivity", "operator"]


class AccountEvent(Event, frozen=True):
    """An event about one account, the topic's key."""

    account_id: str


class AccountMoment(AccountEvent, frozen=True):
    """Something that happened to the account at ``at``."""

    at: datetime


class AccountCreated(AccountEvent, frozen=True, tag="kagi.lifecycle.account_created"):
    login_id: str
    email: str
    roles: list[str]
    issued_at: datetime


class LoggedIn(AccountMoment, frozen=True, tag="kagi.lifecycle.logged_in"):
    via: str = "kagi"


class LoginFailed(AccountMoment, frozen=True, tag="kagi.lifecycle.login_failed"):
    consecutive_failures: int


class AccountLocked(AccountEvent, frozen=True, tag="kagi.lifecycle.account_locked"):
    email: str
    reason: LockReason
    at: datetime


LadderStage = Literal["warning1", "warning2", "lock", "purge"]


class AccountUnlocked(AccountMoment, frozen=True, tag="kagi.lifecycle.account_unlocked"):
    by: str
    """The operator's account id."""


class PasswordChanged(AccountMoment, frozen=True, tag="kagi.lifecycle.password_changed"):
    via: Literal["change", "reset"] = "change"


class AccountWarned(AccountEvent, frozen=True, tag="kagi.lifecycle.account_warned"):
    """An inactivity warning went out (stage ``warning1`` or ``warning2``)."""

    stage: LadderStage
    at: datetime
    lock_on: date
    """The Japan date on which the account will be locked if nobody logs in."""


class AccountPurged(AccountEvent, frozen=True, tag="kagi.lifecycle.account_purged"):
    """An inactive ID was deleted; permissions prompts the company admin to file a revoke request."""

    login_id: str
    email: str
    at: datetime
    reason: Literal["inactivity"] = "inactivity"


class ExternalLoginReported(Event, frozen=True, tag="kagi.lifecycle.external_login_reported"):
    """An external identity provider reports a login (topic ``auth.logins``); it updates last login."""

    login_id: str
    at: datetime
    provider: str


class RegistrationRequested(Event, frozen=True, tag="kagi.lifecycle.registration_requested"):
    """Self-registration: an email-verification link went to an address that has no account (the address
    itself stays out of the event; the subject is the registration id)."""

    registration_id: str
    expires_at: datetime


class RegistrationCompleted(Event, frozen=True, tag="kagi.lifecycle.registration_completed"):
    """The verified address became an account (``account_created`` of the same account comes with it)."""

    registration_id: str
    account_id: str
    at: datetime


class AccountWithdrawn(AccountMoment, frozen=True, tag="kagi.lifecycle.account_withdrawn"):
    """退会 (after ``kagi.invite.withdrawn``): the account's sessions ended and its ID is free to register again."""


class EnrolmentIssued(AccountEvent, frozen=True, tag="kagi.lifecycle.enrolment_issued"):
    """認証情報登録: a one-time URL and password went to a B2B ID (first issue, re-issue or re-enrolment).
    Neither secret is in the event; the mails travel on ``notify.requests``."""

    login_id: str
    expires_at: datetime
    reason: Literal["granted", "reissued", "staff"]


class EnrolmentCompleted(AccountMoment, frozen=True, tag="kagi.lifecycle.enrolment_completed"):
    """The ID's holder set a password with the URL and the one-time password: the account is active."""


class AccountDisabled(AccountEvent, frozen=True, tag="kagi.lifecycle.account_disabled"):
    """A B2B ID holds no permission any more (revoke completed, company terminated): sessions end, login
    is refused; a later grant enrols it again."""

    login_id: str
    reason: str
    at: datetime


register(AccountCreated, LoggedIn, LoginFailed, AccountLocked, AccountUnlocked, PasswordChanged, AccountWarned,
         AccountPurged, ExternalLoginReported, RegistrationRequested, RegistrationCompleted, AccountWithdrawn,
         EnrolmentIssued, EnrolmentCompleted, AccountDisabled)
