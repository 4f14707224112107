"""Password reset by secret question (秘密の質問, guide 6-1): register a question and answer, then reset with it.

Asking for the question answers the same shape whether or not the ID exists or has a question: an ID without
one gets a decoy that is always the same for that ID. Wrong answers to a decoy are counted too (per HMAC of
the ID), so the replies for unknown IDs run down and end like a real account's. Both steps are rate limited
per client IP and per login ID. The threshold-th consecutive wrong answer locks the account (reason
``secret_question``); a right answer sets the new password (policy applies), ends sessions and resets the
failure counts.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import NoReturn

from pymongo import ASCENDING, ReturnDocument

from kagi_lifecycle.domain import secret_question as sq
from kagi_lifecycle.domain.accounts import Account, canonical_login_id, should_lock
from kagi_lifecycle.service.credentials import CredentialService
from kagi_lifecycle.service.notices import send_mail
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import jp_datetime
from kagi_shared.mongo import Tx
from kagi_shared.problems import FieldError, Problem

DECOYS = "secret_question_decoys"
LOCKED = Problem(403, "auth.account_locked", "アカウントがロックされています。ロック解除を申請してください。",
                 extra={"reason": "secret_question"})


def answer_wrong(remaining: int) -> Problem:
    return Problem(400, "password_reset.answer_wrong", "秘密の質問の答えが正しくありません。",
                   errors=[FieldError("answer", "秘密の質問の答えが正しくありません。")],
                   extra={"remainingAttempts": remaining})


class SecretQuestionService:
    def __init__(self, credentials: CredentialService) -> None:
        self.credentials = credentials
        self.lifecycle = credentials.lifecycle
        self.store = credentials.store
        self.accounts = credentials.accounts
        self.passwords = credentials.passwords
        self.settings = credentials.settings
        self.limiter = credentials.limiter
        self.decoys = self.store.db[DECOYS]

    async def ensure_indexes(self) -> None:
        await self.decoys.create_index([("updated_at", ASCENDING)], expireAfterSeconds=24 * 3600)

    @property
    def threshold(self) -> int:
        return self.settings.security.login_lockout_threshold

    async def register(self, account_id: str, question: str, answer: str,
                       correlation_id: str | None = None) -> Account:
        errors = []
        if problem := sq.question_problem(question):
            errors.append(FieldError("question", problem))
        if problem := sq.answer_problem(answer):
            errors.append(FieldError("answer", problem))
        if errors:
            raise Problem(400, "request.invalid", "入力内容に誤りがあります。", errors=errors)
        answer_hash = await self.passwords.hash(sq.normalise_answer(answer))

        async def work(tx: Tx) -> bool:
            return await self.accounts.update(
                tx, account_id, {"secret_question": sq.normalise_question(question),
                                 "secret_answer_hash": answer_hash, "secret_failures": 0},
                when={"status": "active"})

        if not await self.store.transaction(work):
            raise Problem(403, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")
        account = await self.accounts.get(account_id)
        assert account is not None
        return account

    async def _limit(self, step: str, canonical: str, client_ip: str | None, per_id: int) -> None:
        lc = self.settings.lifecycle
        keys = [(f"secret-{step}:id:{canonical}", per_id)]
        if client_ip:
            keys.append((f"secret-{step}:ip:{client_ip}", lc.reset_per_ip))
        await self.limiter.hit(keys, lc.reset_rate_window_s, self.lifecycle.clock())

    def _decoy_key(self, canonical: str) -> str:
        pepper = self.settings.security.code_pepper.encode()
        return hmac.new(pepper, f"secret-decoy:{canonical}".encode(), hashlib.sha256).hexdigest()

    async def question(self, login_id: str, client_ip: str | None) -> str:
        """The ID's question, or the same decoy every time for an ID without one (existence never shows)."""
        canonical = canonical_login_id(login_id)
        await self._limit("question", canonical, client_ip, self.settings.lifecycle.reset_per_login_id)
        account = await self.accounts.by_login_id(canonical)
        if account is not None and account.status != "purged" and account.secret_question:
            return account.secret_question
        return sq.decoy_question(canonical, self.settings.security.code_pepper)

    async def answer(self, login_id: str, answer: str, new_password: str, client_ip: str | None,
                     correlation_id: str | None = None) -> None:
        canonical = canonical_login_id(login_id)
        # Enough for the threshold of wrong answers and a right one, with room for typing slips.
        per_id = 2 * max(self.threshold, self.settings.lifecycle.reset_per_login_id)
        await self._limit("answer", canonical, client_ip, per_id)
        account = await self.accounts.by_login_id(canonical)
        real = account is not None and account.status != "purged" and account.secret_answer_hash is not None
        stored = account.secret_answer_hash if real and account is not None else None
        right = await self.passwords.verify(stored, sq.normalise_answer(answer))
        if not real or account is None:
            await self._decoy_failure(canonical)
        if account.status == "locked":
            raise LOCKED if account.lock_reason == "secret_question" else Problem(
                403, "auth.account_locked", "アカウントがロックされています。ロック解除を申請してください。",
                extra={"reason": account.lock_reason})
        if not right:
            await self._record_failure(account, correlation_id)
        new_hash = await self.credentials._checked(account, new_password, "newPassword")
        now = self.lifecycle.clock()

        async def work(tx: Tx) -> bool:
            done = await self.accounts.update(
                tx, account.id, self.credentials._password_changes(new_hash, now),
                when={"status": "active", "secret_answer_hash": account.secret_answer_hash}, bump_session=True)
            if done:
                self.lifecycle.publish(tx, ev.PasswordChanged(account_id=account.id, at=now, via="reset"),
                                       account.id, correlation_id)
            return done

        if not await self.store.transaction(work):
            current = await self.accounts.get(account.id)
            if current is not None and current.status == "locked":
                raise LOCKED
            raise Problem(409, "password.changed_concurrently",
                          "パスワードが他の操作で変更されました。再度お試しください。")

    async def _decoy_failure(self, canonical: str) -> NoReturn:
        """Count a wrong answer for an ID without a question; the reply runs down like a real account's."""
        doc = await self.decoys.find_one_and_update(
            {"_id": self._decoy_key(canonical)},
            {"$inc": {"failures": 1}, "$set": {"updated_at": self.lifecycle.clock()}},
            upsert=True, return_document=ReturnDocument.AFTER)
        failures = int(doc["failures"]) if doc else 1
        if should_lock(failures, self.threshold):
            raise LOCKED
        raise answer_wrong(sq.remaining_attempts(failures, self.threshold))

    async def _record_failure(self, account: Account, correlation_id: str | None) -> NoReturn:
        now = self.lifecycle.clock()
        threshold = self.threshold

        async def fail(tx: Tx) -> tuple[int, bool]:
            doc = await self.accounts.collection.find_one_and_update(
                {"_id": account.id, "status": "active"}, {"$inc": {"secret_failures": 1}},
                return_document=ReturnDocument.AFTER, session=tx.session)
            if doc is None:
                return threshold, False
            failures = int(doc["secret_failures"])
            if not should_lock(failures, threshold):
                return failures, False
            # Concurrent wrong answers may all cross the threshold; only the one that flips the status locks.
            locked = await self.accounts.update(
                tx, account.id, {"status": "locked", "lock_reason": "secret_question", "locked_at": now},
                when={"status": "active"}, bump_session=True)
            if locked:
                self.lifecycle.publish(tx, ev.AccountLocked(account_id=account.id, email=account.email,
                                                            reason="secret_question", at=now),
                                       account.id, correlation_id)
                send_mail(tx, "secret_question_lock", account.email,
                          {"login_id": account.login_id, "locked_at": jp_datetime(now),
                           "threshold": str(threshold), "contact": self.settings.lifecycle.support_contact},
                          account_id=account.id, category="security", correlation_id=correlation_id)
            return failures, True

        failures, locked = await self.store.transaction(fail)
        if locked or should_lock(failures, threshold):
            raise LOCKED
        raise answer_wrong(sq.remaining_attempts(failures, threshold))
