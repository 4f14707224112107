"""Password change and reset by emailed link (SPEC §4). Refusals name the rule broken.

A reset link is a 256-bit random token stored only as an HMAC, valid 30 minutes (a setting), single
use; a new request replaces the previous link. Requests answer the same whether or not the ID
exists, and are rate limited per client IP and per login ID (a sliding window kept in MongoDB).
An account with a secret question must also answer it (guide 6-1 asks it during re-issue): the link
proves the mailbox, the answer the person; neither alone sets a password.

A wrong current password on a change counts toward the lock like a wrong login (a change is no guessing
oracle). Every change or reset ends the account's sessions and is mailed to the account's address.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from kagi_lifecycle.adapters.password_resets import ResetLink, ResetLinkRepository
from kagi_lifecycle.adapters.rate_limit import RateLimiter
from kagi_lifecycle.domain import password_policy
from kagi_lifecycle.domain.accounts import Account, canonical_login_id
from kagi_lifecycle.service.accounts import AccountService, AccountUseCase, LinkRefusals
from kagi_lifecycle.service.notices import send_mail
from kagi_shared import codes
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import jp_datetime, jp_deadline
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem
from kagi_shared.settings import Settings

_refuse_link = LinkRefusals({
    "unknown": (400, "password_reset.link_invalid", "このリンクは無効です。再度パスワード再設定を申請してください。"),
    "expired": (410, "password_reset.link_expired",
                "このリンクは有効期限が切れています。再度パスワード再設定を申請してください。"),
    "used": (409, "password_reset.link_used", "このリンクは使用済みです。再度パスワード再設定を申請してください。"),
})


def policy_problem(violations: list[password_policy.Violation], field: str) -> Problem:
    return Problem(
        400, "password.policy_violation", "パスワードが条件を満たしていません。",
        errors=[FieldError(field, f"{v.message} ({v.rule})") for v in violations],
        extra={"violations": [{"field": field, "rule": v.rule, "reason": v.message} for v in violations]},
    )


SecondStep = Callable[[Account, str | None, str | None], Awaitable[None]]


def password_changed_mail(tx: Tx, settings: Settings, account: Account, now: datetime, how: str,
                          correlation_id: str | None) -> None:
    contact = settings.lifecycle.support_contact
    send_mail(tx, settings, "password_changed", account.email,
              {"login_id": account.login_id, "changed_at": jp_datetime(now), "how": how, "contact": contact},
              account_id=account.id, category="security", correlation_id=correlation_id)


class CredentialService(AccountUseCase):
    def __init__(self, lifecycle: AccountService, limiter: RateLimiter, resets: ResetLinkRepository) -> None:
        super().__init__(lifecycle)
        self.resets = resets
        self.limiter = limiter
        self.second_step: SecondStep | None = None
        """Checks the secret answer of an account that has a question (wired by the secret-question service)."""

    def _token_hash(self, token: str) -> str:
        return codes.hash_token(token, self.settings.security.code_pepper)

    async def _checked(self, account: Account, new_password: str, field: str) -> str:
        """The new password's hash, or a problem naming every rule it breaks."""
        same = await self.passwords.verify(account.password_hash, new_password)
        violations = self.lifecycle.password_rules.violations(
            new_password, password_policy.Context(login_id=account.login_id, email=account.email,
                                                  same_as_current=same))
        if violations:
            raise policy_problem(violations, field)
        return await self.passwords.hash(new_password)

    def _password_changes(self, new_hash: str, now: datetime) -> dict[str, Any]:
        return {"password_hash": new_hash, "password_changed_at": now, "failed_logins": 0,
                "secret_failures": 0}

    async def change(self, account_id: str, current: str, new_password: str,
                     correlation_id: str | None = None) -> Account:
        account = await self.accounts.get(account_id)
        if account is None or account.status != "active":
            raise Problem(403, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")
        await self.require_current(account, current, correlation_id)
        new_hash = await self._checked(account, new_password, "newPassword")
        now = self.lifecycle.clock()

        async def work(tx: Tx) -> bool:
            # Only if nothing changed the password or locked the account meanwhile.
            done = await self.accounts.update(
                tx, account.id, self._password_changes(new_hash, now),
                when={"status": "active", "password_hash": account.password_hash}, bump_session=True)
            if done:
                self.lifecycle.publish(tx, ev.PasswordChanged(account_id=account.id, at=now, via="change"),
                                       account.id, correlation_id)
                password_changed_mail(tx, self.settings, account, now, "パスワードの変更",
                                      correlation_id)
            return done

        if not await self.store.transaction(work):
            raise Problem(409, "password.changed_concurrently",
                          "パスワードが他の操作で変更されました。再度ログインしてください。")
        return await self.accounts.get(account.id) or account

    async def require_current(self, account: Account, current: str, correlation_id: str | None) -> None:
        """The current password, or a refusal that counts toward the lock as a wrong login does."""
        if await self.passwords.verify(account.password_hash, current):
            return
        if await self.lifecycle.record_failure(account, self.lifecycle.clock(), correlation_id):
            AccountService.refuse_inactive(await self.accounts.get(account.id) or account)
        raise Problem(400, "password.current_wrong", "現在のパスワードが正しくありません。",
                      errors=[FieldError("currentPassword", "現在のパスワードが正しくありません。")])

    async def request_reset(self, login_id: str, client_ip: str | None, correlation_id: str | None = None) -> None:
        """Mail a reset link if the ID exists and is active; answer the same either way."""
        lc = self.settings.lifecycle
        canonical = canonical_login_id(login_id)
        now = self.lifecycle.clock()
        await self.limiter.hit_per_caller(f"reset:id:{canonical}", lc.reset_per_login_id, "reset", client_ip,
                                          lc.reset_per_ip, lc.reset_rate_window_s, now)
        account = await self.accounts.by_login_id(canonical)
        if account is None or account.status != "active":
            return
        token = secrets.token_urlsafe(32)
        expires = now + timedelta(seconds=lc.reset_link_ttl_s)

        async def work(tx: Tx) -> None:
            await self.resets.replace(tx, ResetLink(id=self._token_hash(token), account_id=account.id,
                                                    created_at=now, expires_at=expires))
            send_mail(tx, self.settings, "password_reset", account.email,
                      {"login_id": account.login_id, "expires_at": jp_deadline(expires),
                       "reset_url": f"{self.settings.brand.portal_url}/password-reset?token={token}"},
                      account_id=account.id, category="security", correlation_id=correlation_id)

        await self.store.transaction(work)

    async def complete_reset(self, token: str, new_password: str, correlation_id: str | None = None,
                             answer: str | None = None, client_ip: str | None = None) -> None:
        now = self.lifecycle.clock()
        link = await self.resets.get(self._token_hash(token))
        verdict = ("unknown" if link is None else "used" if link.used_at is not None
                   else "expired" if link.expires_at <= now else "ok")
        if verdict != "ok":
            raise _refuse_link(verdict)
        assert link is not None
        account = await self.accounts.get(link.account_id)
        if account is not None:
            AccountService.refuse_inactive(account)
        if account is None or account.status != "active":
            raise _refuse_link("unknown")
        if account.secret_answer_hash is not None:
            assert self.second_step is not None
            await self.second_step(account, answer, client_ip)  # raises unless the answer is right
        new_hash = await self._checked(account, new_password, "newPassword")

        async def work(tx: Tx) -> str:
            if not await self.resets.spend(tx, link.id, now):
                return "used"
            # The answer judged above must still be the account's (no change of question meanwhile).
            if not await self.accounts.update(tx, account.id, self._password_changes(new_hash, now),
                                              when={"status": "active",
                                                    "secret_answer_hash": account.secret_answer_hash},
                                              bump_session=True):
                return "inactive"
            self.lifecycle.publish(tx, ev.PasswordChanged(account_id=account.id, at=now, via="reset"),
                                   account.id, correlation_id)
            password_changed_mail(tx, self.settings, account, now, "パスワードの再設定",
                                  correlation_id)
            return "ok"

        outcome = await self.store.transaction(work)
        if outcome == "used":
            raise _refuse_link("used")
        if outcome == "inactive":
            raise _refuse_link("unknown")
