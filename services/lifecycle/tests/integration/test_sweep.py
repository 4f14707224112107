"""The inactivity sweep against the real database: mails once, missed sweeps, logins restart the period."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox
from prometheus_client import REGISTRY

from kagi_lifecycle.domain.ladder import start_of_japan_day
from kagi_shared.events import lifecycle as ev
from kagi_shared.jst import JST
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

# Issued on 2026-01-05 10:00 Japan time: base date 2026-01-05.
ISSUED = datetime(2026, 1, 5, 10, 0, tzinfo=JST).astimezone(UTC)


def sweep_on(day: datetime) -> datetime:
    """07:00 Japan time of the given Japan date."""
    return datetime(day.year, day.month, day.day, 7, 0, tzinfo=JST)


BASE = datetime(2026, 1, 5, tzinfo=JST)
DAY = timedelta(days=1)


async def test_warning_one_is_sent_once_even_when_the_sweep_runs_twice(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store, ISSUED)
    account = await lc.service.create_account("sweep1@example.jp", PASSWORD, ["owner"])

    day_119 = sweep_on(BASE + 119 * DAY)
    assert (await lc.sweeps.sweep(day_119)).applied["warning1"] == 0
    day_120 = sweep_on(BASE + 120 * DAY)
    def counted() -> float:
        return REGISTRY.get_sample_value("kagi_lifecycle_ladder_stages_applied_total", {"stage": "warning1"}) or 0.0

    before = counted()
    first = await lc.sweeps.sweep(day_120)
    second = await lc.sweeps.sweep(day_120)
    assert first.applied["warning1"] == 1
    assert counted() == before + 1  # what the SRE dashboard counts
    assert second.examined == 0  # the account is no longer due: the indexed query does not return it

    [mail] = await mails(store, "sweep1@example.jp")
    assert mail.template == "inactivity_warning_1"
    assert mail.category == "lifecycle"
    assert mail.variables["last_login"] == "2026/01/05"
    assert mail.variables["login_deadline"] == "2026/07/03"  # lock date 2026-07-04 − 1
    assert mail.variables["days"] == "120"
    warned = [e for t, e in await outbox(store) if isinstance(e, ev.AccountWarned)]
    assert [(w.account_id, w.stage) for w in warned] == [(account.id, "warning1")]
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.next_stage == "warning2"
    assert stored.next_stage_at == start_of_japan_day((BASE + 150 * DAY).date())


async def test_the_full_ladder_then_login_is_refused(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store, ISSUED)
    account = await lc.service.create_account("ladder@example.jp", PASSWORD, ["owner"])
    for days in (120, 150, 180, 210):
        await lc.sweeps.sweep(sweep_on(BASE + days * DAY))
    templates = [m.template for m in await mails(store, "ladder@example.jp")]
    assert templates == ["inactivity_warning_1", "inactivity_warning_2", "inactivity_lock", "inactivity_purge"]
    lock_mail, purge_mail = (await mails(store))[2:]
    assert lock_mail.variables["unlock_deadline"] == "2026/08/02"  # purge date 2026-08-03 − 1
    assert purge_mail.variables["grace_days"] == "30"

    events = [e for _, e in await outbox(store)]
    locked = [e for e in events if isinstance(e, ev.AccountLocked)]
    purged = [e for e in events if isinstance(e, ev.AccountPurged)]
    assert [e.reason for e in locked] == ["inactivity"]
    assert [(e.account_id, e.login_id) for e in purged] == [(account.id, "ladder@example.jp")]
    stored = await lc.accounts.get(account.id)
    assert stored is not None
    assert stored.status == "purged" and stored.next_stage_at is None
    assert stored.session_version == 2  # lock and purge each ended the sessions
    try:
        await lc.service.login("ladder@example.jp", PASSWORD)
    except Problem as exc:
        assert exc.code == "auth.account_purged"
    else:
        raise AssertionError("a purged account logged in")
    # Nothing more happens, however late the next sweep runs.
    assert (await lc.sweeps.sweep(sweep_on(BASE + 900 * DAY))).examined == 0


async def test_missed_sweeps_apply_only_the_highest_due_stage(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store, ISSUED)
    await lc.service.create_account("missed@example.jp", PASSWORD, ["owner"])
    result = await lc.sweeps.sweep(sweep_on(BASE + 185 * DAY))
    assert result.applied == {"warning1": 0, "warning2": 0, "lock": 1, "purge": 0}
    assert [m.template for m in await mails(store)] == ["inactivity_lock"]
    # The clock moving backwards finds nothing to do and sends nothing.
    assert (await lc.sweeps.sweep(sweep_on(BASE + 130 * DAY))).examined == 0
    assert len(await mails(store)) == 1


async def test_a_login_starts_a_new_period(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store, ISSUED)
    account = await lc.service.create_account("period@example.jp", PASSWORD, ["owner"])
    await lc.sweeps.sweep(sweep_on(BASE + 121 * DAY))
    clock.at = sweep_on(BASE + 140 * DAY).astimezone(UTC) + timedelta(hours=3)  # logs in on day 140
    await lc.service.login("period@example.jp", PASSWORD)
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.ladder_stage is None and stored.next_stage == "warning1"

    # Day 150 of the old period (warning 2, lock later) no longer applies.
    assert (await lc.sweeps.sweep(sweep_on(BASE + 150 * DAY))).examined == 0
    assert (await lc.sweeps.sweep(sweep_on(BASE + 200 * DAY))).examined == 0
    # Warning 1 of the new period comes 120 days after the login.
    result = await lc.sweeps.sweep(sweep_on(BASE + 260 * DAY))
    assert result.applied["warning1"] == 1
    templates = [m.template for m in await mails(store)]
    assert templates == ["inactivity_warning_1", "inactivity_warning_1"]
    assert (await mails(store))[1].variables["last_login"] == (BASE + 140 * DAY).strftime("%Y/%m/%d")


async def test_preview_lists_who_the_sweep_would_hit_and_changes_nothing(settings: Settings,
                                                                        store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store, ISSUED)
    await lc.service.create_account("p-old@example.jp", PASSWORD, ["owner"])
    clock.advance(days=40)
    await lc.service.create_account("p-new@example.jp", PASSWORD, ["owner"])
    as_of = sweep_on(BASE + 182 * DAY)
    _, preview = await lc.sweeps.preview(as_of)
    assert [r.login_id for r in preview["lock"]] == ["p-old@example.jp"]
    assert [r.login_id for r in preview["warning1"]] == ["p-new@example.jp"]
    assert preview["warning2"] == [] and preview["purge"] == []
    assert await mails(store) == []
    result = await lc.sweeps.sweep(as_of)
    assert result.applied == {"warning1": 1, "warning2": 0, "lock": 1, "purge": 0}
    _, after = await lc.sweeps.preview(as_of)
    assert all(rows == [] for rows in after.values())


async def test_sweep_cost_follows_due_accounts_not_all_accounts(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store, ISSUED)
    for n in range(5):
        await lc.service.create_account(f"quiet{n}@example.jp", PASSWORD, ["owner"])
    explained = await store.db["accounts"].find({"next_stage_at": {"$lte": sweep_on(BASE + 10 * DAY)}}).explain()
    assert "IXSCAN" in str(explained) or "next_stage_at_1" in str(explained)
    assert (await lc.sweeps.sweep(sweep_on(BASE + 10 * DAY))).examined == 0


async def test_accounts_stored_before_the_ladder_are_scheduled_once(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    await store.db["accounts"].insert_one({
        "_id": "legacy-1", "login_id": "legacy@example.jp", "email": "legacy@example.jp", "password_hash": "x",
        "roles": ["owner"], "status": "active", "lock_reason": None, "issued_at": ISSUED, "last_login_at": None,
        "password_changed_at": ISSUED, "failed_logins": 0})
    lc, _ = await make_lifecycle(settings, store, ISSUED)  # start() backfills
    stored = await lc.accounts.get("legacy-1")
    assert stored is not None and stored.next_stage == "warning1"
    assert stored.next_stage_at == start_of_japan_day((BASE + 120 * DAY).date())
    assert await lc.sweeps.backfill() == 0  # once per database
    assert (await lc.sweeps.sweep(sweep_on(BASE + 120 * DAY))).applied["warning1"] == 1


async def test_a_login_with_the_clock_behind_keeps_the_later_last_login(settings: Settings,
                                                                       store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store, ISSUED)
    account = await lc.service.create_account("skew@example.jp", PASSWORD, ["owner"])
    later = clock.advance(days=40)
    await lc.service.login("skew@example.jp", PASSWORD)
    clock.at = later - timedelta(days=30)  # this node's clock is behind the one that took the later login
    with pytest.raises(Problem):
        await lc.service.login("skew@example.jp", "Wrong-pass-2026!")
    await lc.service.login("skew@example.jp", PASSWORD)  # still logs in

    stored = await lc.accounts.get(account.id)
    assert stored is not None
    assert stored.last_login_at == later
    assert stored.failed_logins == 0
    assert stored.next_stage == "warning1"
    assert stored.next_stage_at == start_of_japan_day((BASE + 160 * DAY).date())
    logins = [e.at for _, e in await outbox(store) if isinstance(e, ev.LoggedIn)]
    assert logins == [later, later - timedelta(days=30)]

    # The ladder runs from the later login: nothing 120 days after the earlier clock's, warning 1 at day 40 + 120.
    assert (await lc.sweeps.sweep(sweep_on(BASE + 159 * DAY))).examined == 0
    assert (await lc.sweeps.sweep(sweep_on(BASE + 160 * DAY))).applied["warning1"] == 1
    [mail] = await mails(store, "skew@example.jp")
    assert mail.variables["last_login"] == (BASE + 40 * DAY).strftime("%Y/%m/%d")


async def test_two_sweeps_at_once_apply_each_stage_once(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store, ISSUED)
    as_of = sweep_on(BASE + 215 * DAY)
    # One already warned by an earlier sweep, now due for warning 2.
    clock.at = ISSUED + 60 * DAY
    await lc.service.create_account("race-warned@example.jp", PASSWORD, ["owner"])
    assert (await lc.sweeps.sweep(sweep_on(BASE + 181 * DAY))).applied["warning1"] == 1
    expected = {"race-warned@example.jp": "warning2"}
    # Issued so that at ``as_of`` each is due for one stage (days since issue: 215, 185, 155, 125), two of each.
    for offset, stage in ((0, "purge"), (30, "lock"), (60, "warning2"), (90, "warning1")):
        clock.at = ISSUED + offset * DAY
        for n in range(2):
            login_id = f"race-{stage}-{n}@example.jp"
            await lc.service.create_account(login_id, PASSWORD, ["owner"])
            expected[login_id] = stage
    before = len(await mails(store))

    # Hold each sweep's read of an account until the other sweep has read it too (or a moment passed), so
    # that both decide from the same state: the race the cron on every worker makes possible.
    reads: dict[str, int] = {}
    both_read: dict[str, asyncio.Event] = {}
    get = lc.accounts.get

    async def racing_get(account_id: str, tx: Any = None) -> Any:
        account = await get(account_id, tx)
        if tx is not None:
            reads[account_id] = reads.get(account_id, 0) + 1
            event = both_read.setdefault(account_id, asyncio.Event())
            if reads[account_id] >= 2:
                event.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), 0.5)
        return account

    lc.accounts.get = racing_get  # type: ignore[method-assign]
    first, second = await asyncio.gather(lc.sweeps.sweep(as_of), lc.sweeps.sweep(as_of))
    lc.accounts.get = get  # type: ignore[method-assign]
    assert all(n >= 2 for n in reads.values())  # the race did happen

    total = {s: first.applied[s] + second.applied[s] for s in first.applied}
    assert total == {"warning1": 2, "warning2": 3, "lock": 2, "purge": 2}
    # Both may have read the same due accounts; only one applied each.
    assert 9 <= first.examined + second.examined <= 18
    templates = {"warning1": "inactivity_warning_1", "warning2": "inactivity_warning_2", "lock": "inactivity_lock",
                 "purge": "inactivity_purge"}
    sent = [(m.recipient, m.template) for m in (await mails(store))[before:]]
    assert sorted(sent) == sorted((login_id, templates[stage]) for login_id, stage in expected.items())
    events = [e for _, e in await outbox(store)]
    assert len([e for e in events if isinstance(e, ev.AccountWarned)]) == 1 + 5
    assert len([e for e in events if isinstance(e, ev.AccountLocked)]) == 2
    assert len([e for e in events if isinstance(e, ev.AccountPurged)]) == 2
    for login_id, stage in expected.items():
        account = await lc.accounts.by_login_id(login_id)
        assert account is not None and account.ladder_stage == stage, login_id
        # Each lock or purge ended the sessions once.
        assert account.session_version == (1 if stage in ("lock", "purge") else 0), login_id
    assert (await lc.sweeps.sweep(as_of)).examined == 0
