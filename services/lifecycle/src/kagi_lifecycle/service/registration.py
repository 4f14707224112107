"""Self-registration with email verification, and withdrawal (退会) freeing the ID (water portal).

Requests answer the same whether or not the address has an account: a new address gets the
verification link, a registered one gets a notice addressed to its owner (as Okta and Keycloak do).
Both are rate limited per client IP and per address (the address only as an HMAC). The link's token is
256 random bits stored as an HMAC, valid a day (a setting), single use; a new request replaces it.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import timedelta

from kagi_lifecycle.adapters.rate_limit import RateLimiter
from kagi_lifecycle.adapters.registrations import RegistrationRepository
from kagi_lifecycle.domain import password_policy
from kagi_lifecycle.domain.accounts import Account, AccountExists, canonical_login_id, login_id_problem
from kagi_lifecycle.domain.registration import Registration, judge, token_malformed
from kagi_lifecycle.service.accounts import AccountService, AccountUseCase, LinkRefusals
from kagi_lifecycle.service.credentials import policy_problem
from kagi_lifecycle.service.notices import send_mail
from kagi_shared import codes
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import jp_datetime, jp_deadline
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

NEW_ACCOUNT_ROLES = ["owner"]

_refuse = LinkRefusals({
    "malformed": (400, "registration.link_invalid",
                  "このURLは無効です。お手数ですが、メールアドレスの登録からやり直してください。"),
    "unknown": (400, "registration.link_invalid",
                "このURLは無効です。お手数ですが、メールアドレスの登録からやり直してください。"),
    "expired": (410, "registration.link_expired",
                "このURLは有効期限が切れています。お手数ですが、メールアドレスの登録からやり直してください。"),
    "used": (409, "registration.link_used",
             "このURLは使用済みです。登録がお済みの場合はログインしてください。"),
})


class RegistrationService(AccountUseCase):
    def __init__(self, lifecycle: AccountService, limiter: RateLimiter, links: RegistrationRepository) -> None:
        super().__init__(lifecycle)
        self.links = links
        self.limiter = limiter

    def _hmac(self, value: str) -> str:
        return codes.hash_token(value, self.settings.security.code_pepper)

    def _urls(self) -> tuple[str, str]:
        portal = self.settings.brand.portal_url.rstrip("/")
        return f"{portal}/login", f"{portal}/password-reset"

    async def request(self, email: str, client_ip: str | None, correlation_id: str | None = None) -> None:
        """Mail a verification link to a new address, or a notice to the owner of a registered one."""
        email = email.strip()
        if problem := login_id_problem(email):
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=[FieldError("email", problem)])
        lc = self.settings.lifecycle
        login_id = canonical_login_id(email)
        now = self.lifecycle.clock()
        # Counted before the lookup and the same for both kinds of address, so timing and 429s tell nothing.
        await self.limiter.hit_per_caller(f"register:email:{self._hmac(login_id)}", lc.registration_per_email,
                                          "register", client_ip, lc.registration_per_ip,
                                          lc.registration_rate_window_s, now)
        account = await self.accounts.by_login_id(login_id)
        login_url, reset_url = self._urls()
        if account is not None:
            if account.status == "purged":
                return  # a deleted ID's mailbox is not told anything new
            owner = account

            async def notify_owner(tx: Tx) -> None:
                send_mail(tx, self.settings, "registration_exists", owner.email,
                          {"login_id": owner.login_id, "requested_at": jp_datetime(now), "login_url": login_url,
                           "reset_url": reset_url},
                          account_id=owner.id, category="security", correlation_id=correlation_id)

            await self.store.transaction(notify_owner)
            return

        token = secrets.token_urlsafe(32)
        registration = Registration(id=self._hmac(token), registration_id=str(uuid.uuid4()), email=email,
                                    login_id=login_id, created_at=now,
                                    expires_at=now + timedelta(seconds=lc.registration_link_ttl_s))
        portal = self.settings.brand.portal_url.rstrip("/")

        async def work(tx: Tx) -> None:
            await self.links.replace(tx, registration)
            self.lifecycle.publish(tx, ev.RegistrationRequested(registration_id=registration.registration_id,
                                                                expires_at=registration.expires_at),
                                   registration.registration_id, correlation_id)
            send_mail(tx, self.settings, "registration_verify", email,
                      {"verify_url": f"{portal}/register?token={token}",
                       "expires_at": jp_deadline(registration.expires_at)},
                      account_id=None, category="security", correlation_id=correlation_id)

        await self.store.transaction(work)

    async def check(self, token: str) -> Registration:
        """The link's registration if it can still be used; otherwise the refusal naming why."""
        if token_malformed(token):
            raise _refuse("malformed")
        registration = await self.links.get(self._hmac(token))
        verdict = judge(registration, self.lifecycle.clock())
        if verdict != "ok":
            raise _refuse(verdict)
        assert registration is not None
        return registration

    async def complete(self, token: str, password: str, correlation_id: str | None = None) -> Account:
        """The verified address becomes an owner account; the link is spent in the same transaction."""
        registration = await self.check(token)
        violations = self.lifecycle.password_rules.violations(
            password, password_policy.Context(login_id=registration.login_id, email=registration.email))
        if violations:
            raise policy_problem(violations, "password")
        password_hash = await self.lifecycle.passwords.hash(password)
        now = self.lifecycle.clock()
        account = self.lifecycle.new_account(registration.login_id, registration.email, password_hash,
                                             NEW_ACCOUNT_ROLES, now)

        async def work(tx: Tx) -> bool:
            if not await self.links.spend(tx, registration.id, account.id, now):
                return False
            await self.accounts.add(tx, account)
            self.lifecycle.publish(tx, ev.AccountCreated(account_id=account.id, login_id=account.login_id,
                                                         email=account.email, roles=account.roles, issued_at=now),
                                   account.id, correlation_id)
            self.lifecycle.publish(tx, ev.RegistrationCompleted(registration_id=registration.registration_id,
                                                                account_id=account.id, at=now),
                                   account.id, correlation_id)
            return True

        try:
            done = await self.store.transaction(work)
        except AccountExists:
            # Whoever holds the link controls the address, so saying it is taken reveals nothing new.
            raise Problem(409, "registration.already_registered",
                          "このメールアドレスは既に登録されています。ログインするか、パスワードを再設定してください。"
                          ) from None
        if not done:
            await self.check(token)  # raises the reason: used or expired meanwhile
            raise _refuse("used")
        return account

    async def withdraw(self, tx: Tx, account_id: str, correlation_id: str | None) -> bool:
        """After invite's ``withdrawn``: sessions end, the ID is released, the owner gets a notice. Once."""
        account = await self.accounts.get(account_id, tx)
        if account is None or account.status in ("withdrawn", "purged"):
            return False
        now = self.lifecycle.clock()
        changes = {"status": "withdrawn", "login_id": f"withdrawn:{account.id}", "withdrawn_login_id": account.login_id,
                   "withdrawn_at": now, "ladder_stage": None, "next_stage": None, "next_stage_at": None}
        if not await self.accounts.update(tx, account.id, changes, when={"status": account.status},
                                          bump_session=True):
            return False
        self.lifecycle.publish(tx, ev.AccountWithdrawn(account_id=account.id, at=now), account.id, correlation_id)
        send_mail(tx, self.settings, "withdrawal_completed", account.email,
                  {"login_id": account.login_id, "withdrawn_at": jp_datetime(now)},
                  account_id=account.id, category="lifecycle", correlation_id=correlation_id)
        return True
