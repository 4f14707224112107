"""Step-up use cases: issue a code (mailed through notify), verify it, and answer whether a window is open."""

from __future__ import annotations

import uuid
from datetime import datetime

from kagi_invite.domain.step_up import StepUpCode, StepUpPolicy, judge
from kagi_invite.service.outbox import SOURCE, publish_event
from kagi_invite.service.ports import StepUps
from kagi_shared import codes
from kagi_shared.clock import Clock, utc_now
from kagi_shared.events import invite as ev
from kagi_shared.jst import jp_deadline
from kagi_shared.mongo import Transactions, Tx
from kagi_shared.notifications import request_notification
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

_REFUSALS = {
    "expired": (410, "step_up.code_expired", "認証コードの有効期限が切れています。認証コードを再発行してください。"),
    "used": (409, "step_up.code_used", "この認証コードは使用済みです。認証コードを再発行してください。"),
    "voided": (410, "step_up.code_voided",
               "誤った認証コードが規定回数入力されたため、この認証コードは無効になりました。"),
    "replaced": (410, "step_up.code_replaced", "新しい認証コードが発行されたため、この認証コードは無効です。"),
}


def step_up_required() -> Problem:
    return Problem(403, "step_up.required", "追加認証が必要です。認証コードを発行し、追加認証を行ってください。")


async def require_step_up(step_ups: StepUps, policy: StepUpPolicy, caller: Caller, now: datetime) -> None:
    """The gate before the user list and every key: this session's step-up window is open at ``now``."""
    if not policy.window_open(await step_ups.window(caller.account_id, caller.session_id), now):
        raise step_up_required()


class StepUpService:
    def __init__(self, store: Transactions, repo: StepUps, settings: Settings, policy: StepUpPolicy, *,
                 clock: Clock = utc_now) -> None:
        self.clock = clock
        self.store = store
        self.repo = repo
        self.settings = settings
        self.policy = policy

    async def issue(self, caller: Caller, correlation_id: str | None = None) -> StepUpCode:
        if not caller.email:
            raise Problem(400, "step_up.no_email", "登録済みのメールアドレスがありません。")
        security = self.settings.security
        plain = codes.new_code(12)
        now = self.clock()
        code = StepUpCode(id=str(uuid.uuid4()), account_id=caller.account_id,
                          code_hash=codes.hash_code(plain, security.code_pepper), issued_at=now,
                          expires_at=self.policy.code_expires_at(now))

        async def work(tx: Tx) -> None:
            await self.repo.replace_active(tx, code)
            publish_event(
                tx, ev.StepUpCodeIssued(account_id=caller.account_id, code_id=code.id, expires_at=code.expires_at),
                caller.account_id, correlation_id)
            request_notification(
                tx, security.notify_key, source=SOURCE, template="step_up_code", recipient=caller.email,
                category="security", account_id=caller.account_id,
                variables={"code": plain, "expires_at": jp_deadline(code.expires_at)}, correlation_id=correlation_id)

        await self.store.transaction(work)
        return code

    async def verify(self, caller: Caller, entered: str, correlation_id: str | None = None) -> datetime:
        security = self.settings.security
        now = self.clock()
        session_id = caller.session_id
        if not session_id:  # a token from before sessions had ids: the window would belong to nothing
            raise Problem(401, "auth.session_ended", "セッションが終了しました。再度ログインしてください。")
        code = await self.repo.latest(caller.account_id)
        if code is None:
            raise Problem(404, "step_up.no_code", "認証コードが発行されていません。認証コードを発行してください。")
        counted = await self.repo.claim_attempt(code.id, self.policy.max_attempts)
        if counted is None:  # used, replaced, or every attempt already taken (some perhaps still being judged)
            verdict = judge(await self.repo.latest(caller.account_id) or code, False, now)
            if verdict == "wrong":
                verdict = "voided"
        else:
            verdict = judge(counted, codes.verify_code(entered, code.code_hash, security.code_pepper), now)
        if verdict == "ok":
            until = self.policy.window_until(now)

            async def succeed(tx: Tx) -> bool:
                if not await self.repo.set_status(tx, code.id, "used"):
                    return False  # a concurrent verify used it first
                await self.repo.open_window(tx, caller.account_id, session_id, until)
                publish_event(
                    tx, ev.StepUpVerified(account_id=caller.account_id, code_id=code.id, valid_until=until),
                    caller.account_id, correlation_id)
                return True

            if await self.store.transaction(succeed):
                return until
            verdict = "used"
        if verdict == "wrong" and counted is not None:
            await self._wrong(caller, counted, correlation_id)
        status, error, title = _REFUSALS[verdict]
        raise Problem(status, error, title)

    async def _wrong(self, caller: Caller, code: StepUpCode, correlation_id: str | None) -> None:
        """A wrong guess, already counted (``code.attempts``); the last allowed one voids the code."""
        voided = self.policy.voids(code.attempts)

        async def fail(tx: Tx) -> None:
            if voided:
                await self.repo.set_status(tx, code.id, "voided")
            publish_event(
                tx, ev.StepUpFailed(account_id=caller.account_id, code_id=code.id,
                                reason="voided" if voided else "wrong"),
                caller.account_id, correlation_id)

        await self.store.transaction(fail)
        if voided:
            status, error, title = _REFUSALS["voided"]
            raise Problem(status, error, title)
        raise Problem(400, "step_up.code_wrong", "認証コードが正しくありません。",
                      extra={"remainingAttempts": self.policy.remaining(code.attempts)})

    async def window(self, caller: Caller) -> datetime | None:
        until = await self.repo.window(caller.account_id, caller.session_id)
        return until if self.policy.window_open(until, self.clock()) else None

    async def require(self, caller: Caller) -> None:
        await require_step_up(self.repo, self.policy, caller, self.clock())
