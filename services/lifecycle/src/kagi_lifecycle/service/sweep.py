"""The inactivity sweep and its preview (SPEC §4). One transaction per due account.

The sweep reads only accounts whose ``next_stage_at`` has come (an indexed range query), so its
cost grows with the due accounts, not with all accounts. Each account is re-read inside its own
transaction and its stage recomputed there: a login committed meanwhile wins, and running the
sweep twice for the same moment finds nothing left to do the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from croniter import croniter

from kagi_lifecycle.domain import ladder
from kagi_lifecycle.domain.accounts import Account
from kagi_lifecycle.service.accounts import AccountService
from kagi_lifecycle.service.notices import send_mail
from kagi_lifecycle.service.ports import Accounts
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import JST, jp_slash_date
from kagi_shared.logging import get_logger
from kagi_shared.metrics import LADDER_STAGES_APPLIED, prime
from kagi_shared.mongo import Tx

log = get_logger(__name__)

TEMPLATES: dict[str, str] = {
    "warning1": "inactivity_warning_1",
    "warning2": "inactivity_warning_2",
    "lock": "inactivity_lock",
    "purge": "inactivity_purge",
}


@dataclass
class SweepResult:
    as_of: datetime
    applied: dict[str, int] = field(default_factory=lambda: {s: 0 for s in ladder.STAGES})
    examined: int = 0

    def as_json(self) -> dict[str, Any]:
        return {"asOf": self.as_of.isoformat(), "examined": self.examined, "applied": dict(self.applied)}


@dataclass(frozen=True)
class PreviewRow:
    account_id: str
    login_id: str
    email: str
    status: str
    stage: ladder.Stage
    base_date: str
    stage_date: str

    def as_json(self) -> dict[str, str]:
        return {"accountId": self.account_id, "loginId": self.login_id, "email": self.email, "status": self.status,
                "stage": self.stage, "baseDate": self.base_date, "stageDate": self.stage_date}


def next_sweep_at(now: datetime, cron: str, timezone: str = "Asia/Tokyo") -> datetime:
    """The next scheduled sweep after ``now`` (the crontab in Japan time), in UTC."""
    from zoneinfo import ZoneInfo

    moment: datetime = croniter(cron, now.astimezone(ZoneInfo(timezone))).get_next(datetime)
    return moment.astimezone(now.tzinfo)


class SweepService:
    def __init__(self, lifecycle: AccountService, accounts: Accounts) -> None:
        prime(LADDER_STAGES_APPLIED, *((stage,) for stage in ladder.STAGES))  # "no sweep for 3 days" alerts on 0
        self.lifecycle = lifecycle
        self.accounts = accounts
        self.store = lifecycle.store
        self.settings = lifecycle.settings
        self.days = lifecycle.days

    def _ladder(self, account: Account) -> ladder.Ladder:
        base = ladder.base_moment(account.last_login_at, account.issued_at)
        return ladder.ladder_for(ladder.japan_date(base), self.days)

    def _due(self, account: Account, today: Any) -> ladder.Stage | None:
        if account.status == "purged":
            return None
        done = account.ladder_stage if account.ladder_stage in ladder.STAGES else None
        return ladder.due_stage(self._ladder(account), done, today)

    def default_as_of(self) -> datetime:
        lc = self.settings.lifecycle
        return next_sweep_at(self.lifecycle.clock(), lc.sweep_cron, lc.sweep_timezone)

    async def backfill(self) -> int:
        """Schedule accounts stored before the ladder existed (no ``next_stage_at`` field). Runs once per database."""

        def first_stage(last_login_at: datetime | None, issued_at: datetime) -> tuple[str, datetime]:
            base = ladder.base_moment(last_login_at, issued_at)
            plan = ladder.next_stage(ladder.ladder_for(ladder.japan_date(base), self.days), None)
            assert plan is not None
            return plan.stage, plan.due_at

        return await self.accounts.schedule_unscheduled(first_stage)

    async def preview(self, as_of: datetime | None = None) -> tuple[datetime, dict[str, list[PreviewRow]]]:
        """Who a sweep at ``as_of`` (default: the next scheduled one) would hit, per stage. Changes nothing."""
        as_of = as_of or self.default_as_of()
        today = ladder.japan_date(as_of)
        out: dict[str, list[PreviewRow]] = {s: [] for s in ladder.STAGES}
        for account in await self.accounts.due(as_of):
            stage = self._due(account, today)
            if stage is None:
                continue
            plan = self._ladder(account)
            out[stage].append(PreviewRow(account.id, account.login_id, account.email, account.status, stage,
                                         plan.base.isoformat(), plan.date_of(stage).isoformat()))
        return as_of, out

    async def sweep(self, as_of: datetime, correlation_id: str | None = None) -> SweepResult:
        """Apply every stage due at ``as_of``: the highest due stage per account, once per period."""
        result = SweepResult(as_of=as_of)
        for account_id in await self.accounts.due_ids(as_of):
            result.examined += 1

            async def apply(tx: Tx, aid: str = account_id) -> ladder.Stage | None:
                return await self._apply(tx, aid, as_of, correlation_id)

            stage = await self.store.transaction(apply)
            if stage is not None:
                result.applied[stage] += 1
                LADDER_STAGES_APPLIED.labels(stage).inc()
        log.info("lifecycle.sweep", as_of=as_of.isoformat(), examined=result.examined, **result.applied)
        return result

    async def _apply(self, tx: Tx, account_id: str, as_of: datetime,
                     correlation_id: str | None) -> ladder.Stage | None:
        account = await self.accounts.get(account_id, tx)
        if account is None:
            return None
        today = ladder.japan_date(as_of)
        plan = self._ladder(account)
        stage = self._due(account, today)
        if stage is None:
            # Not due after all (a login moved the period, or the account is purged): refresh the schedule.
            done = account.ladder_stage if account.ladder_stage in ladder.STAGES else None
            upcoming = None if account.status == "purged" else ladder.next_stage(plan, done)
            await self.accounts.update(tx, account.id, {
                "next_stage": upcoming.stage if upcoming else None,
                "next_stage_at": upcoming.due_at if upcoming else None})
            return None
        upcoming = ladder.next_stage(plan, stage)
        changes: dict[str, Any] = {"ladder_stage": stage, "next_stage": upcoming.stage if upcoming else None,
                                   "next_stage_at": upcoming.due_at if upcoming else None}
        # Applied only if the account is still as read: the transaction's write-conflict check already
        # makes a second sweep re-read, and this keeps "once per stage" in the write itself.
        unchanged = {"status": account.status, "ladder_stage": account.ladder_stage,
                     "last_login_at": account.last_login_at}
        lc = self.settings.lifecycle
        variables = {"login_id": account.login_id, "last_login": jp_slash_date(plan.base),
                     "days": str(self.days.of(stage)), "contact": lc.support_contact}
        if stage in ("warning1", "warning2"):
            if not await self.accounts.update(tx, account.id, changes, when=unchanged):
                return None
            self.lifecycle.publish(tx, ev.AccountWarned(account_id=account.id, stage=stage, at=as_of,
                                                        lock_on=plan.lock), account.id, correlation_id)
            variables["login_deadline"] = jp_slash_date(plan.login_deadline)
        elif stage == "lock":
            if not await self.accounts.update(tx, account.id, {**changes, "status": "locked",
                                                               "lock_reason": "inactivity", "locked_at": as_of},
                                              when=unchanged, bump_session=True):
                return None
            self.lifecycle.publish(tx, ev.AccountLocked(account_id=account.id, email=account.email,
                                                        reason="inactivity", at=as_of), account.id, correlation_id)
            variables["unlock_deadline"] = jp_slash_date(plan.unlock_deadline)
        else:
            if not await self.accounts.update(tx, account.id, {**changes, "status": "purged"}, when=unchanged,
                                              bump_session=True):
                return None
            self.lifecycle.publish(tx, ev.AccountPurged(account_id=account.id, login_id=account.login_id,
                                                        email=account.email, at=as_of), account.id, correlation_id)
            variables = {"login_id": account.login_id, "grace_days": str(self.days.purge - self.days.lock),
                         "unlock_deadline": jp_slash_date(plan.unlock_deadline), "contact": lc.support_contact}
        send_mail(tx, self.settings, TEMPLATES[stage], account.email, variables, account_id=account.id,
                  correlation_id=correlation_id)
        return stage


def parse_as_of(text: str) -> datetime:
    """``2026-05-01``, ``2026-05-01T07:00`` (Japan time when no offset) or ``…+00:00`` → an aware datetime."""
    text = text.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a date or datetime: {text!r} (use 2026-05-01T07:00 or 2026-05-01T07:00+09:00)")\
            from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=JST)
        if len(text) == 10:
            moment += timedelta(hours=7)  # a bare date means that day's 07:00 sweep
    return moment
