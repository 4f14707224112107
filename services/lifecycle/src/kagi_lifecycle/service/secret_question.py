"""The secret question (秘密の質問, guide 6-1): the second step of a password re-issue.

A re-issue needs both the mailed single-use link (``CredentialService.complete_reset``) and, for an account
that has a question, its answer: a stolen mailbox or a known answer alone sets no password. Registering or
changing the question needs the current password or a fresh step-up of the session, is mailed to the
account's address and ends its sessions. Asking for the question by ID answers the same shape whether or
not the ID exists or has one (a decoy, always the same for that ID). Wrong answers are rate limited per
client IP and per ID; the threshold-th consecutive wrong one locks the account (reason ``secret_question``).
"""

from __future__ import annotations

from typing import NoReturn

from kagi_lifecycle.domain import secret_question as sq
from kagi_lifecycle.domain.accounts import Account, canonical_login_id
from kagi_lifecycle.service.accounts import AccountUseCase
from kagi_lifecycle.service.credentials import CredentialService
from kagi_lifecycle.service.notices import send_mail
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

LOCKED = Problem(403, "auth.account_locked", "アカウントがロックされています。ロック解除を申請してください。",
                 extra={"reason": "secret_question"})


def answer_wrong(remaining: int) -> Problem:
    return Problem(400, "password_reset.answer_wrong", "秘密の質問の答えが正しくありません。",
                   errors=[FieldError("answer", "秘密の質問の答えが正しくありません。")],
                   extra={"remainingAttempts": remaining})


class SecretQuestionService(AccountUseCase):
    def __init__(self, credentials: CredentialService) -> None:
        super().__init__(credentials.lifecycle)
        self.credentials = credentials
        credentials.second_step = self.check_answer
        self.limiter = credentials.limiter

    @property
    def threshold(self) -> int:
        return self.lifecycle.lockout.threshold

    async def register(self, account_id: str, question: str, answer: str, correlation_id: str | None = None, *,
                       current_password: str | None = None, stepped_up: bool = False) -> Account:
        """Set or change the question; ``stepped_up``: the gateway saw a step-up window open for this session."""
        errors = []
        if problem := sq.question_problem(question):
            errors.append(FieldError("question", problem))
        if problem := sq.answer_problem(answer):
            errors.append(FieldError("answer", problem))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        found = await self.accounts.get(account_id)
        if found is None or found.status != "active":
            raise Problem(403, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")
        account = found
        if current_password is not None:
            await self.credentials.require_current(account, current_password, correlation_id)
        elif not stepped_up:
            raise Problem(403, "secret_question.reauthentication_required",
                          "秘密の質問を登録・変更するには、現在のパスワードを入力するか、追加認証を行ってください。",
                          errors=[FieldError("currentPassword", "現在のパスワードを入力してください。")])
        answer_hash = await self.passwords.hash(sq.normalise_answer(answer))
        now = self.lifecycle.clock()

        async def work(tx: Tx) -> bool:
            # Ends every session: whoever holds another one must not keep a way back in.
            done = await self.accounts.update(
                tx, account_id, {"secret_question": sq.normalise_question(question),
                                 "secret_answer_hash": answer_hash, "secret_failures": 0},
                when={"status": "active"}, bump_session=True)
            if done:
                send_mail(tx, self.settings, "secret_question_changed", account.email,
                          {"login_id": account.login_id, "changed_at": jp_datetime(now),
                           "contact": self.settings.lifecycle.support_contact},
                          account_id=account.id, category="security", correlation_id=correlation_id)
            return done

        if not await self.store.transaction(work):
            raise Problem(403, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")
        return await self.accounts.get(account_id) or account

    async def _limit(self, step: str, canonical: str, client_ip: str | None, per_id: int) -> None:
        lc = self.settings.lifecycle
        await self.limiter.hit_per_caller(f"secret-{step}:id:{canonical}", per_id, f"secret-{step}", client_ip,
                                          lc.reset_per_ip, lc.reset_rate_window_s, self.lifecycle.clock())

    async def question(self, login_id: str, client_ip: str | None) -> str:
        """The ID's question, or the same decoy every time for an ID without one (existence never shows)."""
        canonical = canonical_login_id(login_id)
        await self._limit("question", canonical, client_ip, self.settings.lifecycle.reset_per_login_id)
        account = await self.accounts.by_login_id(canonical)
        if account is not None and account.status != "purged" and account.secret_question:
            return account.secret_question
        return sq.decoy_question(canonical, self.settings.security.code_pepper)

    async def check_answer(self, account: Account, answer: str | None, client_ip: str | None) -> None:
        """The second step of a re-issue by link: returns when the answer is right, else raises (and counts)."""
        if account.secret_question is None or account.secret_answer_hash is None:
            return
        if answer is None:
            raise Problem(400, "password_reset.answer_required", "秘密の質問の答えを入力してください。",
                          errors=[FieldError("answer", "秘密の質問の答えを入力してください。")],
                          extra={"question": account.secret_question})
        # Enough for the threshold of wrong answers and a right one, with room for typing slips.
        per_id = 2 * max(self.threshold, self.settings.lifecycle.reset_per_login_id)
        await self._limit("answer", account.login_id, client_ip, per_id)
        if await self.passwords.verify(account.secret_answer_hash, sq.normalise_answer(answer)):
            return
        await self._record_failure(account, None)

    async def _record_failure(self, account: Account, correlation_id: str | None) -> NoReturn:
        now = self.lifecycle.clock()
        threshold = self.threshold

        async def fail(tx: Tx) -> tuple[int, bool]:
            counted = await self.accounts.increment_secret_failures(tx, account.id)
            if counted is None:
                return threshold, False
            failures = counted
            if not self.lifecycle.lockout.locks(failures):
                return failures, False
            # Concurrent wrong answers may all cross the threshold; only the one that flips the status locks.
            locked = await self.accounts.update(
                tx, account.id, {"status": "locked", "lock_reason": "secret_question", "locked_at": now},
                when={"status": "active"}, bump_session=True)
            if locked:
                self.lifecycle.publish(tx, ev.AccountLocked(account_id=account.id, email=account.email,
                                                            reason="secret_question", at=now),
                                       account.id, correlation_id)
                send_mail(tx, self.settings, "secret_question_lock", account.email,
                          {"login_id": account.login_id, "locked_at": jp_datetime(now),
                           "threshold": str(threshold), "contact": self.settings.lifecycle.support_contact},
                          account_id=account.id, category="security", correlation_id=correlation_id)
            return failures, True

        failures, locked = await self.store.transaction(fail)
        if locked or self.lifecycle.lockout.locks(failures):
            raise LOCKED
        raise answer_wrong(self.lifecycle.lockout.remaining(failures))
