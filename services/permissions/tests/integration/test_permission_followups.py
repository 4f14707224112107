"""Access review, purged IDs, ack reminders and admin changes against the embedded database and broker."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from permissions_helpers import (
    DeadLetters,
    accepted_new_user,
    applied,
    commands_on,
    company_with_admin,
    data_of,
    granted_user,
    relay_all,
    unique,
    with_company,
)

from kagi_permissions.bootstrap import consumers
from kagi_permissions.domain.companies import Admin
from kagi_permissions.service.requests import RequestInput
from kagi_shared.events import encode, new_envelope
from kagi_shared.events import lifecycle as lev
from kagi_shared.mongo import OUTBOX
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import LIFECYCLE_EVENTS


async def granted(settings: Settings, store: Any, permissions: Any, admin: Any, name: str = "棚卸 一郎",
                  **perms: str) -> str:
    return await granted_user(settings, store, permissions, admin, name_kanji=name, name_kana="タナオロシ イチロウ",
                              **perms)


async def lifecycle_event(permissions: Any, settings: Settings, event: Any, account_id: str) -> str:
    consumer = consumers(permissions, DeadLetters(), settings)[LIFECYCLE_EVENTS.name]
    envelope = new_envelope(event, source="kagi/lifecycle", subject=account_id)
    return await consumer.process(LIFECYCLE_EVENTS.name, account_id.encode(), encode(envelope))


async def test_access_review_lists_users_with_last_login_and_revokes_become_requests(
        settings: Settings, store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    keep = await granted(settings, store, permissions, admin, TAXIS="1011", JUJU="yes")
    drop = await granted(settings, store, permissions, admin, JOHS="J1010")
    login_at = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)
    now = datetime.now(UTC)
    await lifecycle_event(permissions, settings, lev.AccountCreated(
        account_id="acct-keep", login_id=keep, email=keep, roles=["viewer"], issued_at=now), "acct-keep")
    for at in (login_at, login_at - timedelta(days=3)):  # an older login arriving late does not win
        await lifecycle_event(permissions, settings, lev.LoggedIn(account_id="acct-keep", at=at), "acct-keep")

    users = {u.user_id: u for u in await permissions.reviews.users(admin)}
    assert set(users) == {keep, drop}
    assert users[keep].permissions == {"TAXIS": "1011", "JOHS": None, "JUJU": "yes", "LOACUS": None}
    assert users[keep].last_login_at == login_at and users[drop].last_login_at is None

    campaign = await permissions.reviews.start(admin)
    campaign = await permissions.reviews.decide(admin, campaign.id, keep, "keep")
    campaign = await permissions.reviews.decide(admin, campaign.id, drop.upper(), "revoke")
    assert campaign.status == "complete"
    revoke_id = campaign.entry(drop.lower()).request_id  # type: ignore[union-attr]
    revoke = await permissions.requests.get(admin, str(revoke_id))
    assert (revoke.kind, revoke.origin, revoke.status) == ("revoke", "review", "in_progress")
    with pytest.raises(Problem) as twice:
        await permissions.reviews.decide(admin, campaign.id, keep, "revoke")
    assert twice.value.code == "review.closed"

    rows = list(csv.reader(io.StringIO((await permissions.reviews.report(admin, campaign.id)).lstrip("\ufeff"))))
    assert rows[0][:4] == ["利用者ID", "利用者名(漢字)", "利用者名(カナ)", "所属事業者"]
    by_user = {r[0]: r for r in rows[1:]}
    assert by_user[keep][4:8] == ["1011:更新権限あり", "なし", "あり", "なし"]
    assert by_user[keep][8] == "2026年11月20日 10時30分"  # Japan time for people
    assert by_user[keep][9] == "継続" and by_user[drop][9] == "抹消" and by_user[drop][12] == revoke_id
    assert by_user[drop][8] == "未ログイン"


async def test_the_review_report_has_no_formula_cells(settings: Settings, store_factory: Any) -> None:
    """Issue 15 finding 11: a user's name like =HYPERLINK(...) became a live formula in the admin's Excel."""
    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted(settings, store, permissions, admin, name="=HYPERLINK(\"http://x\",\"開く\")", TAXIS="1011")
    campaign = await permissions.reviews.start(admin)
    rows = list(csv.reader(io.StringIO((await permissions.reviews.report(admin, campaign.id)).lstrip("\ufeff"))))
    [row] = [r for r in rows[1:] if r[0] == user]
    assert row[1] == "'=HYPERLINK(\"http://x\",\"開く\")"
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)


async def test_purged_id_tells_the_admins_and_leaves_a_revoke_to_confirm(settings: Settings,
                                                                         store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted(settings, store, permissions, admin, TAXIS="1010")
    purged_at = datetime.now(UTC)
    await lifecycle_event(permissions, settings, lev.AccountPurged(
        account_id="acct-p", login_id=user, email=user, at=purged_at), "acct-p")

    notices = [data_of(r) for r in await store.db[OUTBOX].find({"topic": "notify.requests"}).to_list()
               if data_of(r)["template"] == "purged_id_revoke_needed"]
    assert [(n["recipient"], n["variables"]["user_id"]) for n in notices] == [(admin.email, user)]
    [draft] = await permissions.repo.drafts((await permissions.requests.company_of(admin)).id)
    filed = await permissions.requests.confirm_draft(admin, draft.id)
    assert (filed.kind, filed.origin, filed.user_id) == ("revoke", "purge", user)
    with pytest.raises(Problem) as again:
        await permissions.requests.confirm_draft(admin, draft.id)
    assert again.value.code == "draft.already_filed"


async def test_missing_acks_past_the_sla_raise_one_reminder(settings: Settings, store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    _, accepted = await accepted_new_user(permissions, admin, "遅延", "チエン", TAXIS="1010")
    await permissions.requests.run_batch(accepted.batch_date)  # type: ignore[arg-type]
    later = datetime.now(UTC) + timedelta(seconds=settings.permissions.ack_sla_s + 60)
    assert await permissions.requests.remind_overdue(datetime.now(UTC)) == 0
    assert await permissions.requests.remind_overdue(later) == 3  # TAXIS, INFOSITE and the admin's PMS
    assert await permissions.requests.remind_overdue(later) == 0  # once per command
    events = [r["type"] for r in await store.db[OUTBOX].find({"topic": "permissions.events"}).to_list()]
    assert events.count("kagi.permissions.ack_overdue_flagged") == 3
    overdue = await permissions.requests.deliveries("overdue")
    assert overdue == []  # the operator's view uses the real clock: nothing is overdue yet


async def test_admin_change_issues_the_new_admin_id_and_keeps_user_grants(settings: Settings,
                                                                          store_factory: Any) -> None:
    store, permissions, company_id, admin = await with_company(settings, store_factory)
    user = await granted(settings, store, permissions, admin, TAXIS="1010")
    successor = unique("admin2")
    company = await permissions.companies.change(company_id, {"primary_admin": Admin(name="新 担当",
                                                                                     email=successor)})
    assert company.primary_admin.email == successor
    appointments = await permissions.repo.find_requests({"company_id": company_id, "origin": "company",
                                                         "user_key": successor.lower()})
    assert [(s.system, s.after) for r in appointments for s in r.systems] == [("PMS", "yes")]
    assert (await permissions.repo.grant(user.lower()))["permissions"]["TAXIS"] == "1010"  # type: ignore[index]
    with pytest.raises(Problem) as former:
        await permissions.requests.submit(admin, RequestInput(kind="revoke", user_id=user))
    assert former.value.code == "permissions.not_company_admin"


async def test_an_admin_can_request_systems_for_their_own_id(settings: Settings, store_factory: Any) -> None:
    store, permissions, company_id, admin = await with_company(settings, store_factory)
    [appointment] = await permissions.repo.find_requests({"company_id": company_id, "origin": "company"})
    await relay_all(settings, store)
    [(_, pms)] = await commands_on(settings, "PMS", {appointment.id})
    await applied(settings, permissions, pms)

    own = await permissions.requests.submit(admin, RequestInput(kind="new", user_id=admin.login_id.upper(),
                                                                permissions={"JOHS": "J1010"},
                                                                name_kanji="託送 太郎", name_kana="タクソウ タロウ"))
    assert own.status == "submitted"
    _, other_admin = await company_with_admin(permissions)
    with pytest.raises(Problem) as taken:  # another company's admin ID stays taken
        await permissions.requests.submit(other_admin, RequestInput(
            kind="new", user_id=admin.login_id, permissions={"JOHS": "J1010"}, name_kanji="他社", name_kana="タシャ"))
    assert taken.value.errors[0].field == "userId"


async def test_the_worker_timer_runs_the_batch_on_its_date_only(settings: Settings, store_factory: Any) -> None:
    _, permissions, _, admin = await with_company(settings, store_factory)
    filed, accepted = await accepted_new_user(permissions, admin, "定時", "テイジ", JOHS="J1010")
    assert accepted.batch_date is not None
    # 23:30 UTC the day before is 08:30 on the batch date in Japan.
    eve = datetime.combine(accepted.batch_date - timedelta(days=1), datetime.min.time(), UTC) + timedelta(hours=13)
    morning = eve + timedelta(hours=10, minutes=30)
    assert (await permissions.requests.tick(eve))[0].requests == 0
    assert (await permissions.requests.tick(morning))[0].commands == 2  # JOHS and INFOSITE
    assert (await permissions.requests.get(admin, filed.id)).status == "in_progress"

