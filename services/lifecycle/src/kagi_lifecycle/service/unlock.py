"""Unlock requests (the user files, an operator approves or rejects) and the operator's own lock.

Filing answers the same whether or not the ID exists or is locked; the outcome reaches the
account's registered address by mail. Unlocking keeps the account only before its purge date
(last login + 210 days): on or after it the request is refused with that reason.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from kagi_lifecycle.adapters.rate_limit import RateLimiter
from kagi_lifecycle.adapters.unlock_requests import UnlockRequestRepository
from kagi_lifecycle.domain import ladder
from kagi_lifecycle.domain.accounts import Account, canonical_login_id
from kagi_lifecycle.domain.unlock import RequestStatus, UnlockRequest
from kagi_lifecycle.service.accounts import ACCOUNT_NOT_FOUND, AccountService, AccountUseCase
from kagi_lifecycle.service.notices import SOURCE, send_mail
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import new_envelope
from kagi_shared.events.audit import AuditRecorded
from kagi_shared.jst import jp_slash_date
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem
from kagi_shared.topics import AUDIT_EVENTS

AFTER_PURGE = "削除予定日を過ぎているため、ロックを解除できません。新規に ID の発行を申請してください。"


class UnlockService(AccountUseCase):
    def __init__(self, lifecycle: AccountService, limiter: RateLimiter, requests: UnlockRequestRepository) -> None:
        super().__init__(lifecycle)
        self.limiter = limiter
        self.requests = requests

    def _purge_date(self, account: Account) -> ladder.Ladder:
        base = ladder.base_moment(account.last_login_at, account.issued_at)
        return ladder.ladder_for(ladder.japan_date(base), self.lifecycle.days)

    def _past_purge(self, account: Account, now: datetime) -> bool:
        return account.status == "purged" or ladder.japan_date(now) >= self._purge_date(account).purge

    def _result_mail(self, tx: Tx, account: Account, approved: bool, detail: str, correlation_id: str | None) -> None:
        send_mail(tx, self.settings, "unlock_result", account.email,
                  {"login_id": account.login_id, "result": "承認" if approved else "却下", "detail": detail,
                   "contact": self.settings.lifecycle.support_contact},
                  account_id=account.id, category="security", correlation_id=correlation_id)

    async def file(self, login_id: str, message: str, client_ip: str | None,
                   correlation_id: str | None = None) -> None:
        lc = self.settings.lifecycle
        now = self.lifecycle.clock()
        canonical = canonical_login_id(login_id)
        await self.limiter.hit_per_caller(f"unlock:id:{canonical}", lc.reset_per_login_id, "unlock", client_ip,
                                          lc.reset_per_ip, lc.reset_rate_window_s, now)
        account = await self.accounts.by_login_id(canonical)
        if account is None or account.status == "active":
            return
        if await self.requests.has_pending(account.id):
            return  # one open request per account
        past_purge = self._past_purge(account, now)
        request = UnlockRequest(id=str(uuid.uuid4()), account_id=account.id, login_id=account.login_id,
                                status="refused" if past_purge else "pending", lock_reason=account.lock_reason,
                                message=message, filed_at=now, decided_at=now if past_purge else None,
                                note=AFTER_PURGE if past_purge else None,
                                purge_date=self._purge_date(account).purge.isoformat())

        async def work(tx: Tx) -> None:
            await self.requests.add(tx, request)
            if past_purge:
                self._result_mail(tx, account, False, AFTER_PURGE, correlation_id)

        await self.store.transaction(work)

    async def listing(self, status: str | None = None, limit: int = 100) -> list[UnlockRequest]:
        return await self.requests.listing(status, limit)

    async def _pending(self, request_id: str) -> tuple[UnlockRequest, Account]:
        request = await self.requests.get(request_id)
        if request is None:
            raise Problem(404, "unlock.not_found", "ロック解除申請が見つかりません。")
        if request.status != "pending":
            raise Problem(409, "unlock.already_decided", "このロック解除申請は処理済みです。",
                          extra={"status": request.status})
        return request, await self.account(request.account_id)

    async def _decide(self, tx: Tx, request: UnlockRequest, status: RequestStatus, operator_id: str,
                      note: str | None, now: datetime) -> bool:
        return await self.requests.decide(tx, request.id, status, operator_id, note, now)

    async def approve(self, request_id: str, operator_id: str, note: str | None = None,
                      correlation_id: str | None = None) -> UnlockRequest:
        request, account = await self._pending(request_id)
        now = self.lifecycle.clock()
        if self._past_purge(account, now):
            async def refuse(tx: Tx) -> None:
                if await self._decide(tx, request, "refused", operator_id, AFTER_PURGE, now):
                    self._result_mail(tx, account, False, AFTER_PURGE, correlation_id)

            await self.store.transaction(refuse)
            raise Problem(409, "unlock.after_purge_date", AFTER_PURGE,
                          extra={"purgeDate": self._purge_date(account).purge.isoformat()})
        if account.status != "locked":
            raise Problem(409, "unlock.not_locked", "このアカウントはロックされていません。")
        unlock_by = jp_slash_date(self._purge_date(account).unlock_deadline)
        detail = (f"ロックを解除しました。{unlock_by} までにログインしてください。"
                  if account.lock_reason == "inactivity" else "ロックを解除しました。")

        async def work(tx: Tx) -> bool:
            if not await self._decide(tx, request, "approved", operator_id, note, now):
                return False
            await self.accounts.update(tx, account.id, {"status": "active", "lock_reason": None, "locked_at": None,
                                                        "failed_logins": 0, "secret_failures": 0},
                                       when={"status": "locked"})
            self.lifecycle.publish(tx, ev.AccountUnlocked(account_id=account.id, at=now, by=operator_id),
                                   account.id, correlation_id)
            self._result_mail(tx, account, True, detail, correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(409, "unlock.already_decided", "このロック解除申請は処理済みです。")
        return await self._get(request.id)

    async def break_glass(self, login_id: str, by: str, correlation_id: str | None = None) -> Account:
        """Unlock from the operator's shell (``kagi accounts unlock``): the way back in when every operator is
        locked out. Mailed to the account like an approved request; the event names who did it."""
        account = await self.accounts.by_login_id(canonical_login_id(login_id))
        if account is None:
            raise ACCOUNT_NOT_FOUND
        if account.status != "locked":
            raise Problem(409, "unlock.not_locked", "このアカウントはロックされていません。")
        now = self.lifecycle.clock()

        async def work(tx: Tx) -> bool:
            if not await self.accounts.update(tx, account.id, {"status": "active", "lock_reason": None,
                                                               "locked_at": None, "failed_logins": 0,
                                                               "secret_failures": 0},
                                              when={"status": "locked"}):
                return False
            self.lifecycle.publish(tx, ev.AccountUnlocked(account_id=account.id, at=now, by=by), account.id,
                                   correlation_id)
            self._result_mail(tx, account, True, "ロックを解除しました。", correlation_id)
            # An operator action outside the gateway: it reaches the audit ledger through this outbox.
            tx.publish(AUDIT_EVENTS.name, new_envelope(
                AuditRecorded(actor_id=by, actor_login_id=by, roles=["operator"], action="CLI kagi accounts unlock",
                              target=account.login_id, status=200, outcome="success", ip=None,
                              request_id=correlation_id, at=now),
                source=SOURCE, subject=by, correlation_id=correlation_id))
            return True

        if not await self.store.transaction(work):
            raise Problem(409, "unlock.not_locked", "このアカウントはロックされていません。")
        return account

    async def reject(self, request_id: str, operator_id: str, note: str | None = None,
                     correlation_id: str | None = None) -> UnlockRequest:
        request, account = await self._pending(request_id)
        now = self.lifecycle.clock()
        detail = "ロック解除申請は却下されました。" + (f" ({note})" if note else "")

        async def work(tx: Tx) -> bool:
            if not await self._decide(tx, request, "rejected", operator_id, note, now):
                return False
            self._result_mail(tx, account, False, detail, correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(409, "unlock.already_decided", "このロック解除申請は処理済みです。")
        return await self._get(request.id)

    async def _get(self, request_id: str) -> UnlockRequest:
        request = await self.requests.get(request_id)
        assert request is not None
        return request

    async def operator_lock(self, account_id: str, operator_id: str, correlation_id: str | None = None) -> Account:
        account = await self.account(account_id)
        if account.status != "active":
            raise Problem(409, "account.not_active", "このアカウントは既にロックまたは削除されています。",
                          extra={"status": account.status})
        now = self.lifecycle.clock()

        async def work(tx: Tx) -> bool:
            if not await self.accounts.update(tx, account.id, {"status": "locked", "lock_reason": "operator",
                                                               "locked_at": now},
                                              when={"status": "active"}, bump_session=True):
                return False
            self.lifecycle.publish(tx, ev.AccountLocked(account_id=account.id, email=account.email,
                                                        reason="operator", at=now), account.id, correlation_id)
            return True

        if not await self.store.transaction(work):
            raise Problem(409, "account.not_active", "このアカウントは既にロックまたは削除されています。")
        return await self.accounts.get(account.id) or account
