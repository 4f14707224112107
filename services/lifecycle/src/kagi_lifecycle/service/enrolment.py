"""認証情報登録 of B2B IDs (company admins, system users, operators, support): accounts follow permissions.

An ID that gains its first permission (``kagi.permissions.access_changed``) gets an account waiting for
enrolment and the seed's two mails: the guide with a one-time URL, then the one-time password. The URL's
holder proves the password, chooses a login password (the active policy profile) and may register a
secret question; the account is then active. The last permission going away disables the account at once
(sessions end); a later grant enrols the ID again. Operators and support re-issue both mails.

Refusals tell the URL's holder why (expired, used, void, wrong one-time password): only the holder of a
256-bit token can ask about it, so that tells nobody else anything; a token never issued gets one answer.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from kagi_lifecycle.adapters.enrolments import EnrolmentRepository
from kagi_lifecycle.domain import password_policy
from kagi_lifecycle.domain import secret_question as sq
from kagi_lifecycle.domain.accounts import Account, AccountExists, canonical_login_id, login_id_problem
from kagi_lifecycle.domain.enrolment import (
    TOKEN_BYTES,
    Enrolment,
    EnrolmentPolicy,
    IssueReason,
    access_action,
    judge,
    token_malformed,
    with_b2b_roles,
)
from kagi_lifecycle.service.accounts import AccountService, AccountUseCase, LinkRefusals, account_exists, new_period
from kagi_lifecycle.service.credentials import policy_problem
from kagi_lifecycle.service.notices import send_mail
from kagi_shared import codes
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import permissions as pev
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

UNSET_PASSWORD = "!unset"  # noqa: S105 - not a password: a marker no argon2 hash can equal
"""The password hash of an ID that has not enrolled yet: verifies against nothing."""
STAFF_ROLES = ("operator", "support")

_refuse = LinkRefusals({
    "unknown": (404, "enrolment.link_invalid",
                "このURLは無効です。メールに記載されたURLをご確認ください。"),
    "expired": (410, "enrolment.link_expired",
                "このURLは有効期限が切れています。託送受付センターにメールの再発行を依頼してください。"),
    "used": (409, "enrolment.link_used",
             "このURLは使用済みです。認証情報登録がお済みの場合はログインしてください。"),
    "voided": (410, "enrolment.link_voided",
               "このURLは無効になりました(ワンタイムパスワードの誤りが規定回数に達したか、メールが再発行されました)。"
               "託送受付センターにメールの再発行を依頼してください。"),
})


class EnrolmentService(AccountUseCase):
    def __init__(self, lifecycle: AccountService, enrolments: EnrolmentRepository, policy: EnrolmentPolicy) -> None:
        super().__init__(lifecycle)
        self.policy = policy
        self.enrolments = enrolments

    def _pepper(self) -> str:
        return self.settings.security.code_pepper

    # -- issuing -----------------------------------------------------------------------------------
    async def issue(self, tx: Tx, account: Account, reason: IssueReason, correlation_id: str | None) -> Enrolment:
        """A new URL and one-time password for ``account`` (the previous ones stop working), and the two
        mails in the seed's order: the guide with the URL, then the password."""
        now = self.lifecycle.clock()
        await self.enrolments.void_open(tx, account.id, now, "reissued")
        token = secrets.token_urlsafe(TOKEN_BYTES)
        otp = codes.new_code(12)
        enrolment = Enrolment(id=codes.hash_token(token, self._pepper()), account_id=account.id,
                              login_id=account.login_id, otp_hash=codes.hash_code(otp, self._pepper()),
                              created_at=now,
                              expires_at=self.policy.expires_at(now))
        await self.enrolments.add(tx, enrolment)
        self.lifecycle.publish(tx, ev.EnrolmentIssued(account_id=account.id, login_id=account.login_id,
                                                      expires_at=enrolment.expires_at,
                                                      reason=reason),
                               account.id, correlation_id)
        portal = self.settings.brand.portal_url.rstrip("/")
        send_mail(tx, self.settings, "user_registration_guide", account.email,
                  {"user_id": account.login_id, "registration_url": f"{portal}/registration/{token}"},
                  account_id=account.id, category="security", correlation_id=correlation_id)
        send_mail(tx, self.settings, "user_one_time_password", account.email,
                  {"user_id": account.login_id, "password": otp},
                  account_id=account.id, category="security", correlation_id=correlation_id)
        return enrolment

    def _pending_account(self, login_id: str, roles: list[str], now: datetime) -> Account:
        account = self.lifecycle.new_account(login_id, login_id, UNSET_PASSWORD, roles, now)
        account.status = "pending_enrolment"
        return account

    async def create_staff(self, email: str, name: str, role: str, correlation_id: str | None = None) -> Account:
        """An operator or support account (``kagi accounts create``): no password anywhere but the holder's."""
        errors = []
        if problem := login_id_problem(email.strip()):
            errors.append(FieldError("email", problem))
        if role not in STAFF_ROLES:
            errors.append(FieldError("role", f"ロールは {' / '.join(STAFF_ROLES)} のいずれかです。"))
        if not name.strip():
            errors.append(FieldError("name", "氏名を入力してください。"))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        account = self._pending_account(email.strip(), [role], self.lifecycle.clock())
        account.name = name.strip()

        async def work(tx: Tx) -> None:
            await self.accounts.add(tx, account)
            self.lifecycle.publish(tx, ev.AccountCreated(account_id=account.id, login_id=account.login_id,
                                                         email=account.email, roles=account.roles,
                                                         issued_at=account.issued_at), account.id, correlation_id)
            await self.issue(tx, account, "staff", correlation_id)

        try:
            await self.store.transaction(work)
        except AccountExists:
            raise account_exists("email") from None
        return account

    async def reissue(self, account_id: str, correlation_id: str | None = None) -> Enrolment:
        """Operator or support: both mails again; the previous URL and one-time password stop working."""

        async def work(tx: Tx) -> Enrolment:
            account = await self.account(account_id, tx)
            if not self._awaiting(account):
                raise Problem(409, "enrolment.not_pending", "この ID は認証情報登録を待っていません。",
                              extra={"status": account.status})
            return await self.issue(tx, account, "reissued", correlation_id)

        return await self.store.transaction(work)

    @staticmethod
    def _awaiting(account: Account) -> bool:
        return account.status == "pending_enrolment" or (
            account.status == "active" and account.password_hash == UNSET_PASSWORD)

    # -- the URL's holder ----------------------------------------------------------------------------
    async def check(self, token: str) -> Enrolment:
        """The enrolment behind a URL if it can still be used; otherwise the refusal naming why."""
        if token_malformed(token):
            raise _refuse("unknown")
        enrolment = await self.enrolments.get(codes.hash_token(token, self._pepper()))
        verdict = judge(enrolment, self.lifecycle.clock())
        if verdict != "ok":
            raise _refuse(verdict)
        assert enrolment is not None
        return enrolment

    async def _wrong_otp(self, enrolment: Enrolment) -> Problem:
        """Count a wrong one-time password; the one that reaches the limit voids the URL and the password."""
        failures = await self.enrolments.count_otp_failure(enrolment.id)
        if failures is None:  # spent or voided meanwhile
            return _refuse(judge(await self.enrolments.get(enrolment.id), self.lifecycle.clock()))
        if self.policy.voids(failures):
            await self.enrolments.void(enrolment.id, self.lifecycle.clock(), "otp_failures")
            return _refuse("voided")
        return Problem(400, "enrolment.otp_invalid", "ワンタイムパスワードが正しくありません。",
                       errors=[FieldError("oneTimePassword",
                                          "メールでお知らせしたワンタイムパスワードを入力してください。")],
                       extra={"remainingAttempts": self.policy.remaining(failures)})

    async def complete(self, token: str, one_time_password: str, password: str, question: str | None = None,
                       answer: str | None = None, correlation_id: str | None = None) -> Account:
        """The one-time password proven, the chosen password set: the account becomes active. The URL and
        the password are spent in the same transaction."""
        enrolment = await self.check(token)
        if not codes.verify_code(one_time_password, enrolment.otp_hash, self._pepper()):
            raise await self._wrong_otp(enrolment)
        account = await self.accounts.get(enrolment.account_id)
        if account is None or not self._awaiting(account):
            raise _refuse("used")
        errors = []
        if (question is None) != (answer is None):
            errors.append(FieldError("secretAnswer" if answer is None else "secretQuestion",
                                     "秘密の質問と答えは両方とも入力してください。"))
        if question is not None and (problem := sq.question_problem(question)):
            errors.append(FieldError("secretQuestion", problem))
        if answer is not None and (problem := sq.answer_problem(answer)):
            errors.append(FieldError("secretAnswer", problem))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        violations = self.lifecycle.password_rules.violations(
            password, password_policy.Context(login_id=account.login_id, email=account.email))
        if violations:
            raise policy_problem(violations, "password")
        password_hash = await self.passwords.hash(password)
        changes: dict[str, Any] = {"password_hash": password_hash, "status": "active", "failed_logins": 0}
        if question is not None and answer is not None:
            changes.update(secret_question=sq.normalise_question(question),
                           secret_answer_hash=await self.passwords.hash(sq.normalise_answer(answer)),
                           secret_failures=0)
        now = self.lifecycle.clock()
        changes.update(password_changed_at=now, enrolled_at=now)

        async def work(tx: Tx) -> bool:
            if not await self.enrolments.spend(tx, enrolment.id, now):
                return False
            if not await self.accounts.update(tx, account.id, changes,
                                              when={"status": account.status, "password_hash": UNSET_PASSWORD}):
                return False
            self.lifecycle.publish(tx, ev.EnrolmentCompleted(account_id=account.id, at=now), account.id,
                                   correlation_id)
            return True

        if not await self.store.transaction(work):
            await self.check(token)  # raises the reason: used, void or expired meanwhile
            raise _refuse("used")
        fresh = await self.accounts.get(account.id)
        assert fresh is not None
        return fresh

    # -- permissions drive the account -----------------------------------------------------------------
    async def on_access_changed(self, tx: Tx, event: pev.AccessChanged, correlation_id: str | None) -> str:
        """Apply one change of an ID's permissions to its account (in the inbox transaction)."""
        login_id = canonical_login_id(event.user_id)
        account = await self.accounts.by_login_id(login_id, tx)
        held = {system: value for system, value in event.permissions.items() if value}
        gained = event.after is not None and event.before is None
        action = access_action(account.status if account else None, gained, bool(held))
        now = self.lifecycle.clock()
        if action == "enrol":
            fresh = self._pending_account(event.user_id, with_b2b_roles([], held), now)
            await self.accounts.add(tx, fresh)
            self.lifecycle.publish(tx, ev.AccountCreated(account_id=fresh.id, login_id=fresh.login_id,
                                                         email=fresh.email, roles=fresh.roles, issued_at=now),
                                   fresh.id, correlation_id)
            await self.issue(tx, fresh, "granted", correlation_id)
            return action
        if account is None or action == "none":
            return action
        if action == "reenrol":
            # A new issue: the ladder counts from today, the old password and lock are gone.
            changes: dict[str, Any] = {
                "status": "pending_enrolment", "password_hash": UNSET_PASSWORD,
                "roles": with_b2b_roles(account.roles, held), "issued_at": now, "last_login_at": None,
                "password_changed_at": now, "failed_logins": 0, "lock_reason": None, "locked_at": None,
                "enrolled_at": None, "disabled_reason": None, "secret_failures": 0,
                **new_period(now, self.lifecycle.days)}
            await self.accounts.update(tx, account.id, changes, when={"status": account.status}, bump_session=True)
            refreshed = await self.accounts.get(account.id, tx)
            assert refreshed is not None
            await self.issue(tx, refreshed, "granted", correlation_id)
        elif action == "disable":
            reason = "company_terminated" if event.reason == "company_terminated" else "no_permission"
            await self.accounts.update(tx, account.id, {
                "status": "disabled", "disabled_reason": reason, "roles": with_b2b_roles(account.roles, {}),
                "next_stage": None, "next_stage_at": None}, when={"status": account.status}, bump_session=True)
            await self.enrolments.void_open(tx, account.id, now, "disabled")
            self.lifecycle.publish(tx, ev.AccountDisabled(account_id=account.id, login_id=account.login_id,
                                                          reason=reason, at=now), account.id, correlation_id)
        else:
            roles = with_b2b_roles(account.roles, held)
            if roles != account.roles:
                await self.accounts.update(tx, account.id, {"roles": roles}, bump_session=True)
        return action
