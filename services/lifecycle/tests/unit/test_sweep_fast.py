"""The inactivity ladder (SPEC §4: 120 / 150 / 180 / 210 days, each stage once, a login starts a new period) applied
by the sweep on the in-memory accounts: the integration tests' use case without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fast_lifecycle import PASSWORD, Clock, events, fast_accounts

from kagi_lifecycle.service.sweep import SweepService
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import JST
from kagi_shared.problems import Problem
from tests.support import opened_notice

ISSUED = datetime(2026, 1, 5, 10, 0, tzinfo=JST).astimezone(UTC)  # base date 2026-01-05
BASE = datetime(2026, 1, 5, tzinfo=JST)
DAY = timedelta(days=1)


def sweep_on(days: int) -> datetime:
    day = BASE + days * DAY
    return datetime(day.year, day.month, day.day, 7, 0, tzinfo=JST)


def mails(published: list[object], to: str) -> list[str]:
    return [getattr(e, "template", "") for e in published if getattr(e, "recipient", None) == to]


async def test_the_full_ladder_each_stage_once_then_login_is_refused() -> None:
    svc, transactions, accounts, _ = fast_accounts(Clock(ISSUED))
    sweeps = SweepService(svc, accounts)
    account = await svc.create_account("ladder@example.jp", PASSWORD, ["owner"])
    assert (await sweeps.sweep(sweep_on(119))).applied["warning1"] == 0
    for days in (120, 120, 150, 180, 210):
        await sweeps.sweep(sweep_on(days))
    published = events(transactions)
    assert mails(published, "ladder@example.jp") == ["inactivity_warning_1", "inactivity_warning_2",
                                                     "inactivity_lock", "inactivity_purge"]
    warning = next(e for e in published if getattr(e, "template", "") == "inactivity_warning_1")
    assert opened_notice(warning).variables["login_deadline"] == "2026/07/03"  # lock date 2026-07-04 − 1
    assert [e.reason for e in published if isinstance(e, ev.AccountLocked)] == ["inactivity"]
    assert [e.account_id for e in published if isinstance(e, ev.AccountPurged)] == [account.id]
    with pytest.raises(Problem) as refused:
        await svc.login("ladder@example.jp", PASSWORD)
    assert refused.value.code == "auth.account_purged"


async def test_missed_sweeps_apply_only_the_highest_due_stage() -> None:
    svc, transactions, accounts, _ = fast_accounts(Clock(ISSUED))
    sweeps = SweepService(svc, accounts)
    await svc.create_account("missed@example.jp", PASSWORD, ["owner"])
    result = await sweeps.sweep(sweep_on(185))
    assert result.applied["lock"] == 1 and result.applied["warning1"] == result.applied["warning2"] == 0
    assert mails(events(transactions), "missed@example.jp") == ["inactivity_lock"]


async def test_a_login_starts_a_new_period() -> None:
    clock = Clock(ISSUED)
    svc, transactions, accounts, _ = fast_accounts(clock)
    sweeps = SweepService(svc, accounts)
    await svc.create_account("active@example.jp", PASSWORD, ["owner"])
    await sweeps.sweep(sweep_on(120))
    clock.at = sweep_on(121) + timedelta(hours=3)
    await svc.login("active@example.jp", PASSWORD)
    assert (await sweeps.sweep(sweep_on(150))).applied["warning2"] == 0  # the old period's stages are gone
    assert (await sweeps.sweep(sweep_on(121 + 120))).applied["warning1"] == 1  # the new period's first
    assert mails(events(transactions), "active@example.jp") == ["inactivity_warning_1", "inactivity_warning_1"]
