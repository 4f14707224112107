"""Account use cases: create accounts, log in, count wrong passwords toward the lock. Each one a transaction with
its events; the rules are the policies passed in (``LockoutPolicy``, ``PasswordPolicy``), built in ``bootstrap``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.adapters.secret_box import SecretBox
from kagi_lifecycle.domain import ladder, password_policy, totp
from kagi_lifecycle.domain.accounts import (
    ROLES,
    Account,
    AccountExists,
    LockoutPolicy,
    canonical_login_id,
    judge_login_report,
    login_id_problem,
)
from kagi_lifecycle.domain.password_policy import PasswordPolicy
from kagi_lifecycle.service.notices import SOURCE, send_mail
from kagi_lifecycle.service.ports import Accounts
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import Event, new_envelope
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Transactions, Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import LIFECYCLE_EVENTS

INVALID_CREDENTIALS = Problem(401, "auth.invalid_credentials", "ID またはパスワードが正しくありません。")
TOTP_PROMPT = "認証アプリに表示されている 6 桁のワンタイムパスワードを入力してください。"
TOTP_REQUIRED = Problem(401, "auth.totp_required", TOTP_PROMPT, errors=[FieldError("totpCode", TOTP_PROMPT)])
TOTP_INVALID = Problem(401, "auth.totp_invalid", "ワンタイムパスワードが正しくありません。",
                       errors=[FieldError("totpCode", "ワンタイムパスワードが正しくありません。")])
ACCOUNT_NOT_FOUND = Problem(404, "account.not_found", "アカウントが見つかりません。")


class LinkRefusals:
    """Why a mailed link cannot be used (a verdict of the domain), as the problem its holder is shown."""

    def __init__(self, problems: dict[str, tuple[int, str, str]]) -> None:
        self.problems = problems

    def __call__(self, verdict: str) -> Problem:
        return Problem(*self.problems[verdict])


def account_exists(field: str) -> Problem:
    """The login ID is taken (a duplicate key on insert), reported on the form field that typed it."""
    return Problem(409, "account.exists", "この ID は既に登録されています。",
                   errors=[FieldError(field, "既に使用されています。")])



def new_period(base: datetime, days: ladder.LadderDays) -> dict[str, Any]:
    """Fields that start a new inactivity period at ``base`` (a login, or the ID's issue)."""
    plan = ladder.next_stage(ladder.ladder_for(ladder.japan_date(base), days), None)
    assert plan is not None
    return {"ladder_stage": None, "next_stage": plan.stage, "next_stage_at": plan.due_at}


class AccountService:
    def __init__(self, store: Transactions, accounts: Accounts, passwords: Passwords, settings: Settings,
                 clock: Clock = utc_now, *, lockout: LockoutPolicy, password_rules: PasswordPolicy,
                 ladder_days: ladder.LadderDays) -> None:
        self.store = store
        self.accounts = accounts
        self.passwords = passwords
        self.settings = settings
        self.clock = clock
        self.lockout = lockout
        self.password_rules = password_rules
        self.days = ladder_days
        self.totp_box = SecretBox(settings.security.code_pepper, "totp")

    def needs_totp(self, account: Account) -> bool:
        return totp.required(account.roles, self.settings.security.totp_roles)

    def publish(self, tx: Tx, event: Event, account_id: str, correlation_id: str | None) -> None:
        tx.publish(LIFECYCLE_EVENTS.name, new_envelope(event, source=SOURCE, subject=account_id,
                                                       correlation_id=correlation_id))

    async def create_account(self, login_id: str, password: str, roles: list[str],
                             email: str | None = None, correlation_id: str | None = None) -> Account:
        errors = []
        if problem := login_id_problem(login_id):
            errors.append(FieldError("loginId", problem))
        # New accounts follow the same password policy as changes and resets.
        violations = self.password_rules.violations(password, password_policy.Context(login_id=login_id,
                                                                                      email=email or login_id))
        errors += [FieldError("password", f"{v.message} ({v.rule})") for v in violations]
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            errors.append(FieldError("roles", f"不明なロールです: {', '.join(unknown)}"))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        password_hash = await self.passwords.hash(password)
        now = self.clock()
        account = self.new_account(login_id, email or login_id, password_hash, roles, now)

        async def work(tx: Tx) -> None:
            await self.accounts.add(tx, account)
            self.publish(tx, ev.AccountCreated(account_id=account.id, login_id=account.login_id, email=account.email,
                                               roles=account.roles, issued_at=now), account.id, correlation_id)

        try:
            await self.store.transaction(work)
        except AccountExists:
            raise account_exists("loginId") from None
        return account

    def new_account(self, login_id: str, email: str, password_hash: str, roles: list[str], now: datetime) -> Account:
        period = new_period(now, self.days)
        return Account(id=str(uuid.uuid4()), login_id=canonical_login_id(login_id), email=email.strip(),
                       password_hash=password_hash, roles=sorted(set(roles)), issued_at=now, password_changed_at=now,
                       next_stage=period["next_stage"], next_stage_at=period["next_stage_at"])

    def password_expired(self, account: Account, now: datetime) -> bool:
        return self.password_rules.expired(account.password_changed_at, now)

    async def login(self, login_id: str, password: str, correlation_id: str | None = None,
                    totp_code: str | None = None) -> Account:
        """Password, then for privileged roles with TOTP enrolled the code (``auth.totp_required`` until given).
        A privileged account not yet enrolled logs in; the gateway then opens only the enrolment to it."""
        account = await self.accounts.by_login_id(canonical_login_id(login_id))
        ok = await self.passwords.verify(account.password_hash if account else None, password)
        if account is None:
            raise INVALID_CREDENTIALS
        if (account.status == "locked" and account.lock_reason == "failed_logins" and self.needs_totp(account)
                and self.lockout.privileged_lock_over(account.locked_at, self.clock())):
            account = await self._end_expired_lock(account, correlation_id)
        if ok:
            self.refuse_inactive(account)
        if account.status != "active":
            raise INVALID_CREDENTIALS
        now = self.clock()
        if not ok:
            await self.record_failure(account, now, correlation_id)
            raise INVALID_CREDENTIALS
        step = await self._second_factor(account, totp_code, now, correlation_id)

        changes = {"last_login_at": now, "failed_logins": 0, **new_period(now, self.days)}

        async def succeed(tx: Tx) -> tuple[bool, Account | None]:
            """(logged in, the account as the login wrote it: None when it only reset the failures)."""
            # The code's step is taken in the same write as the login: a concurrent replay of it loses.
            if step is not None and not await self.accounts.take_totp_step(tx, account.id, step):
                return False, None
            # Only an account that is still active logs in: a lock committed meanwhile wins.
            moved = await self.accounts.move_last_login(tx, account.id, now, changes, active_only=True)
            # Not moved: a later login is already stored (this clock is behind). The user still logs in,
            # but the later login stays the ladder's base.
            if moved is None and not await self.accounts.update(tx, account.id, {"failed_logins": 0},
                                                                when={"status": "active"}):
                return False, None
            self.publish(tx, ev.LoggedIn(account_id=account.id, at=now), account.id, correlation_id)
            return True, moved

        logged_in, written = await self.store.transaction(succeed)
        if not logged_in:
            current = await self.accounts.get(account.id)
            if current is not None:
                self.refuse_inactive(current)
            raise INVALID_CREDENTIALS
        if self.passwords.needs_rehash(account.password_hash):
            await self._rehash(account, password)
        return written or await self.accounts.get(account.id) or account

    async def _second_factor(self, account: Account, code: str | None, now: datetime,
                             correlation_id: str | None) -> int | None:
        """The TOTP step of a right code, None when the account logs in without one; wrong codes count as
        wrong passwords do (the password was right, but the guesser does not hold the authenticator)."""
        if not self.needs_totp(account) or account.totp_secret is None:
            return None
        if not code:
            raise TOTP_REQUIRED
        secret = self.totp_box.open(account.totp_secret, account.id)
        step = totp.matching_step(secret, code, now, account.totp_last_step)
        if step is None:
            if await self.record_failure(account, now, correlation_id):
                self.refuse_inactive(await self.accounts.get(account.id) or account)
            raise TOTP_INVALID
        return step

    async def _end_expired_lock(self, account: Account, correlation_id: str | None) -> Account:
        """A privileged account's failed-login lock is time-limited: nobody can lock every operator out."""
        now = self.clock()

        async def unlock(tx: Tx) -> None:
            if await self.accounts.update(tx, account.id, {"status": "active", "lock_reason": None, "locked_at": None,
                                                           "failed_logins": 0},
                                          when={"status": "locked", "locked_at": account.locked_at}):
                self.publish(tx, ev.AccountUnlocked(account_id=account.id, at=now, by="system:lock_expired"),
                             account.id, correlation_id)

        await self.store.transaction(unlock)
        return await self.accounts.get(account.id) or account

    async def _rehash(self, account: Account, password: str) -> None:
        """Move a hash made with older argon2 parameters to today's, now that the password is known to be right.
        Only if the stored hash is still the one verified: a password change committed meanwhile wins."""
        try:
            fresh = await self.passwords.hash(password)
        except Problem:  # no hashing slot free: the login stands, the next one upgrades
            return
        await self.accounts.replace_hash(account.id, account.password_hash, fresh)

    @staticmethod
    def refuse_inactive(account: Account) -> None:
        if account.status == "locked":
            raise Problem(403, "auth.account_locked", "アカウントがロックされています。ロック解除を申請してください。",
                          extra={"reason": account.lock_reason})
        if account.status == "purged":
            raise Problem(403, "auth.account_purged", "この ID は削除されています。")
        if account.status == "disabled":
            raise Problem(403, "auth.account_disabled",
                          "この ID には有効な利用権限がないため、ログインできません。"
                          "システム窓口責任者にお問い合わせください。")
        if account.status == "pending_enrolment":
            raise Problem(403, "auth.enrolment_pending",
                          "認証情報登録が完了していません。メールでお知らせしたURLから登録してください。")

    async def record_failure(self, account: Account, now: datetime, correlation_id: str | None) -> bool:
        """A wrong password (at login or as the current password of a change); True when it locked the account."""
        threshold = self.lockout.threshold

        async def fail(tx: Tx) -> bool:
            failures = await self.accounts.increment_failures(tx, account.id)
            self.publish(tx, ev.LoginFailed(account_id=account.id, at=now, consecutive_failures=failures),
                         account.id, correlation_id)
            if not self.lockout.locks(failures):
                return False
            # Concurrent wrong attempts all cross the threshold; only the one that flips the status locks.
            locked = await self.accounts.update(
                tx, account.id, {"status": "locked", "lock_reason": "failed_logins", "locked_at": now},
                when={"status": "active"}, bump_session=True)
            if locked:
                self.publish(tx, ev.AccountLocked(account_id=account.id, email=account.email, reason="failed_logins",
                                                  at=now), account.id, correlation_id)
                send_mail(tx, self.settings, "failed_login_lock", account.email,
                          {"login_id": account.login_id, "locked_at": jp_datetime(now), "threshold": str(threshold),
                           "contact": self.settings.lifecycle.support_contact},
                          account_id=account.id, category="security", correlation_id=correlation_id)
            return locked

        return await self.store.transaction(fail)

    async def external_login(self, tx: Tx, event: ev.ExternalLoginReported, correlation_id: str | None) -> bool:
        """An external identity provider's login: always a ``LoggedIn``; last login and the period move
        only forward."""
        account = await self.accounts.by_login_id(canonical_login_id(event.login_id), tx)
        if account is None:
            return False
        decision = judge_login_report(account.status, account.last_login_at, event.at)
        if not decision.record:
            return False
        if decision.moves_last_login:
            changes: dict[str, Any] = {"last_login_at": event.at}
            if account.status == "active":
                changes.update(new_period(event.at, self.days))
            # The write repeats the rule, so a concurrent later login is never undone.
            await self.accounts.move_last_login(tx, account.id, event.at, changes, active_only=False)
        self.publish(tx, ev.LoggedIn(account_id=account.id, at=event.at, via=event.provider), account.id,
                     correlation_id)
        return True


class AccountUseCase:
    """A use case built on ``AccountService``: it works on the same store, accounts, passwords and settings."""

    def __init__(self, lifecycle: AccountService) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.store
        self.accounts = lifecycle.accounts
        self.passwords = lifecycle.passwords
        self.settings = lifecycle.settings

    async def account(self, account_id: str, tx: Tx | None = None) -> Account:
        """The account, or 404 ``account.not_found``."""
        account = await self.accounts.get(account_id, tx)
        if account is None:
            raise ACCOUNT_NOT_FOUND
        return account
