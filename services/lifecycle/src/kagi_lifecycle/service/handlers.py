"""Lifecycle use cases: create accounts, log in. Each one a transaction with its events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pymongo.errors import DuplicateKeyError

from kagi_lifecycle.adapters.passwords import Passwords
from kagi_lifecycle.adapters.repository import AccountRepository
from kagi_lifecycle.domain.accounts import ROLES, Account, canonical_login_id, login_id_problem, should_lock
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import new_envelope
from kagi_shared.mongo import Store, Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import LIFECYCLE_EVENTS

SOURCE = "kagi/lifecycle"

INVALID_CREDENTIALS = Problem(401, "auth.invalid_credentials", "ID またはパスワードが正しくありません。")


def _now() -> datetime:
    return datetime.now(UTC)


class LifecycleService:
    def __init__(self, store: Store, accounts: AccountRepository, passwords: Passwords, settings: Settings) -> None:
        self.store = store
        self.accounts = accounts
        self.passwords = passwords
        self.settings = settings

    async def create_account(self, login_id: str, password: str, roles: list[str],
                             email: str | None = None, correlation_id: str | None = None) -> Account:
        errors = []
        if problem := login_id_problem(login_id):
            errors.append(FieldError("loginId", problem))
        if not 8 <= len(password) <= 64:
            errors.append(FieldError("password", "8 文字以上 64 文字以内で入力してください。"))
        unknown = sorted(set(roles) - set(ROLES))
        if unknown:
            errors.append(FieldError("roles", f"不明なロールです: {', '.join(unknown)}"))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        now = _now()
        account = Account(
            id=str(uuid.uuid4()),
            login_id=canonical_login_id(login_id),
            email=(email or login_id).strip(),
            password_hash=await self.passwords.hash(password),
            roles=sorted(set(roles)),
            issued_at=now,
            password_changed_at=now,
        )

        async def work(tx: Tx) -> None:
            await self.accounts.add(tx, account)
            tx.publish(LIFECYCLE_EVENTS.name, new_envelope(
                ev.AccountCreated(account_id=account.id, login_id=account.login_id, email=account.email,
                                  roles=account.roles, issued_at=now),
                source=SOURCE, subject=account.id, correlation_id=correlation_id))

        try:
            await self.store.transaction(work)
        except DuplicateKeyError:
            raise Problem(409, "account.exists", "この ID は既に登録されています。",
                          errors=[FieldError("loginId", "既に使用されています。")]) from None
        return account

    async def login(self, login_id: str, password: str, correlation_id: str | None = None) -> Account:
        account = await self.accounts.by_login_id(canonical_login_id(login_id))
        ok = await self.passwords.verify(account.password_hash if account else None, password)
        if account is None:
            raise INVALID_CREDENTIALS
        if ok and account.status == "locked":
            raise Problem(403, "auth.account_locked", "アカウントがロックされています。ロック解除を申請してください。",
                          extra={"reason": account.lock_reason})
        if ok and account.status == "purged":
            raise Problem(403, "auth.account_purged", "この ID は削除されています。")
        if account.status != "active":
            raise INVALID_CREDENTIALS
        now = _now()
        if not ok:
            await self._record_failure(account, now, correlation_id)
            raise INVALID_CREDENTIALS

        async def succeed(tx: Tx) -> None:
            await self.accounts.update(tx, account.id, {"last_login_at": now, "failed_logins": 0})
            tx.publish(LIFECYCLE_EVENTS.name, new_envelope(
                ev.LoggedIn(account_id=account.id, at=now), source=SOURCE, subject=account.id,
                correlation_id=correlation_id))

        await self.store.transaction(succeed)
        account.last_login_at = now
        account.failed_logins = 0
        return account

    async def _record_failure(self, account: Account, now: datetime, correlation_id: str | None) -> None:
        threshold = self.settings.security.login_lockout_threshold

        async def fail(tx: Tx) -> None:
            failures = await self.accounts.increment_failures(tx, account.id)
            tx.publish(LIFECYCLE_EVENTS.name, new_envelope(
                ev.LoginFailed(account_id=account.id, at=now, consecutive_failures=failures),
                source=SOURCE, subject=account.id, correlation_id=correlation_id))
            if should_lock(failures, threshold):
                await self.accounts.update(tx, account.id, {"status": "locked", "lock_reason": "failed_logins"})
                tx.publish(LIFECYCLE_EVENTS.name, new_envelope(
                    ev.AccountLocked(account_id=account.id, email=account.email, reason="failed_logins", at=now),
                    source=SOURCE, subject=account.id, correlation_id=correlation_id))

        await self.store.transaction(fail)
