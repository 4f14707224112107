"""The request workflow against the embedded database and broker: filing rules, accept, batch routing, acks."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import msgspec
import pytest
from permissions_helpers import (
    DeadLetters,
    ack,
    acks_consumer,
    applied,
    commands_on,
    company_with_admin,
    data_of,
    granted_user,
    relay_all,
    service,
    unique,
    with_company,
)

from kagi_permissions.bootstrap import consumers
from kagi_permissions.service.requests import RequestInput
from kagi_shared.mongo import OUTBOX
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import PERMISSIONS_ACKS


def new(user_id: str, **perms: str) -> RequestInput:
    return RequestInput(kind="new", user_id=user_id, permissions=dict(perms), name_kanji="山田 花子",
                        name_kana="ヤマダ ハナコ")


async def test_batch_routes_one_command_per_user_and_system_and_acks_complete_it(
        settings: Settings, store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    first = await permissions.requests.submit(admin, new(unique(), TAXIS="1011", JOHS="J1010", LOACUS="02010"))
    second = await permissions.requests.submit(admin, new(unique(), TAXIS="1010"))
    assert first.status == "submitted"
    accepted = [await permissions.requests.accept(r.id) for r in (first, second)]
    batch = accepted[0].batch_date
    assert batch is not None and accepted[0].status == "accepted"

    result = await permissions.requests.run_batch(batch)
    assert (result.requests, result.commands) == (2, 6)  # 4 + INFOSITE for each user
    assert (await permissions.requests.run_batch(batch)).commands == 0  # a second run sends nothing again
    await relay_all(settings, store)

    ids = {first.id, second.id}
    taxis = await commands_on(settings, "TAXIS", ids)
    assert sorted(c.user_id for _, c in taxis) == sorted([first.user_key, second.user_key])
    assert all(key == c.user_id.encode() for key, c in taxis)  # key = user id: one user's commands stay ordered
    assert [c.after for _, c in await commands_on(settings, "LOACUS", ids)] == ["02010"]
    assert len(await commands_on(settings, "JOHS", ids)) == 1
    assert len(await commands_on(settings, "INFOSITE", ids)) == 2
    assert await commands_on(settings, "JUJU", ids) == []

    consumer = acks_consumer(permissions, settings)
    view = await permissions.requests.get(admin, first.id)
    assert view.status == "in_progress"
    for system in ("TAXIS", "JOHS", "INFOSITE"):
        [(_, command)] = await commands_on(settings, system, {first.id})
        key, value = await ack(settings, command)
        assert await consumer.process("permissions.acks", key, value) == "handled"
    view = await permissions.requests.get(admin, first.id)
    from kagi_permissions.domain.requests import display

    assert display(view) == {"progress": "処理中", "TAXIS": "済", "JOHS": "済", "JUJU": "(不要)", "LOACUS": "未済",
                             "INFOSITE": "済"}
    [(_, loacus)] = await commands_on(settings, "LOACUS", {first.id})
    key, value = await ack(settings, loacus)
    assert await consumer.process("permissions.acks", key, value) == "handled"
    assert await consumer.process("permissions.acks", key, value) == "duplicate"  # redelivery is harmless
    done = await permissions.requests.get(admin, first.id)
    assert done.status == "complete" and display(done)["progress"] == "処理完了"

    rows = await store.db[OUTBOX].find({"topic": "notify.requests"}).to_list()
    templates = [(data_of(r)["template"], data_of(r)["recipient"]) for r in rows]
    # The enrolment mails are lifecycle's now (it keeps the URL and password hashed): permissions says what the
    # user holds after each applied system, keyed by the user so the changes stay in order.
    changes = [(r["key"], data_of(r)) for r in await store.db[OUTBOX].find(
        {"topic": "permissions.events", "type": "kagi.permissions.access_changed"}).sort("seq").to_list()]
    mine = [(key, d["system"], d["before"], d["after"], d["permissions"]) for key, d in changes
            if d["userId"] == first.user_id]
    assert [m[0] for m in mine] == [first.user_key] * 4
    assert [m[1:4] for m in mine] == [("TAXIS", None, "1011"), ("JOHS", None, "J1010"), ("INFOSITE", None, "yes"),
                                      ("LOACUS", None, "02010")]
    assert mine[-1][4] == {"TAXIS": "1011", "JOHS": "J1010", "INFOSITE": "yes", "LOACUS": "02010"}
    assert not [t for t, _ in templates if t in ("user_registration_guide", "user_one_time_password")]
    statuses = [data_of(r)["variables"]["status"] for r in rows if data_of(r)["template"] == "request_status_changed"
                and data_of(r)["variables"]["request_id"] == first.id]
    assert statuses == ["処理完了"]  # accept was notified before the relay emptied the outbox


async def test_failed_ack_is_visible_and_a_retry_sends_a_new_command(settings: Settings, store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    filed = await permissions.requests.submit(admin, new(unique(), JOHS="J1010"))
    accepted = await permissions.requests.accept(filed.id)
    await permissions.requests.run_batch(accepted.batch_date or date.max)
    await relay_all(settings, store)
    consumer = acks_consumer(permissions, settings)

    [(_, command)] = await commands_on(settings, "JOHS", {filed.id})
    key, value = await ack(settings, command, "failed", "ID重複(認証システム)")
    assert await consumer.process("permissions.acks", key, value) == "handled"
    failed = await permissions.requests.deliveries("failed")
    assert [(d["requestId"], d["system"], d["reason"]) for d in failed] == [(filed.id, "JOHS", "ID重複(認証システム)")]

    await permissions.requests.retry(filed.id, "JOHS")
    await relay_all(settings, store)
    commands = await commands_on(settings, "JOHS", {filed.id})
    assert [c.attempt for _, c in commands] == [1, 2]
    retried = commands[1][1]
    # A late "applied" for the first attempt is not the current command: it changes nothing.
    late_key, late = await ack(settings, command)
    assert await consumer.process("permissions.acks", late_key, late) == "handled"
    assert (await permissions.requests.get(admin, filed.id)).system("JOHS").state == "sent"  # type: ignore[union-attr]
    key, value = await ack(settings, retried)
    await consumer.process("permissions.acks", key, value)
    assert (await permissions.requests.get(admin, filed.id)).system("JOHS").state == "applied"  # type: ignore[union-attr]
    assert await permissions.requests.deliveries("failed") == []


async def test_acks_for_unknown_requests_and_before_the_grant_change_nothing(settings: Settings,
                                                                             store_factory: Any) -> None:
    from kagi_shared.events import encode, new_envelope
    from kagi_shared.events import permissions as ev

    store, permissions, _, admin = await with_company(settings, store_factory)
    filed = await permissions.requests.submit(admin, new(unique(), TAXIS="1010"))
    consumer = acks_consumer(permissions, settings)
    for request_id in ("no-such-request", filed.id):  # unknown request; known request whose batch has not run
        envelope = new_envelope(ev.GrantAcknowledged(command_id="cmd-x", request_id=request_id, system="TAXIS",
                                                     user_id=filed.user_key, outcome="applied"),
                                source="target/taxis", subject=request_id)
        assert await consumer.process("permissions.acks", request_id.encode(), encode(envelope)) == "handled"
    assert await store.db["stray_acks"].count_documents({}) == 2
    view = await permissions.requests.get(admin, filed.id)
    assert view.status == "submitted" and view.system("TAXIS").state == "waiting"  # type: ignore[union-attr]


async def test_a_batch_of_acks_applies_each_once_and_dead_letters_only_the_poison(settings: Settings,
                                                                                  store_factory: Any) -> None:
    from kagi_shared.inbox import Message

    store, permissions, _, admin = await with_company(settings, store_factory)
    first = await permissions.requests.submit(admin, new(unique(), TAXIS="1011", JOHS="J1010", LOACUS="02010"))
    second = await permissions.requests.submit(admin, new(unique(), TAXIS="1010"))
    accepted = [await permissions.requests.accept(r.id) for r in (first, second)]
    await permissions.requests.run_batch(accepted[0].batch_date or date.max)
    await relay_all(settings, store)
    ids = {first.id, second.id}
    commands = [c for system in ("TAXIS", "JOHS", "LOACUS", "INFOSITE")
                for _, c in await commands_on(settings, system, ids)]
    assert len(commands) == 6
    acks = [await ack(settings, command) for command in commands]
    # Kept off the broker: other tests read the whole shared ack topic and decode every record on it.
    poison_key, poison = acks[1][0], acks[1][1].replace(b'"outcome":"applied"', b'"outcome":"maybe"')
    dead = DeadLetters()
    consumer = consumers(permissions, dead, settings)[PERMISSIONS_ACKS.name]
    assert await consumer.process("permissions.acks", *acks[0]) == "handled"  # applied alone before the batch

    batch = [Message("permissions.acks", key, value) for key, value in [*acks, acks[2], (poison_key, poison)]]
    outcomes = await consumer.process_many(batch)

    assert outcomes == ["duplicate", *["handled"] * 5, "duplicate", "dead"]
    assert dead.sent == [("permissions.acks.dlt", poison)]
    for request in (first, second):
        assert (await permissions.requests.get(admin, request.id)).status == "complete"
        grant = await permissions.repo.grant(request.user_key)
        assert grant is not None
        assert {k: v for k, v in grant["permissions"].items() if v} == {
            c.system: c.after for c in commands if c.request_id == request.id}
    events = [(r["type"], data_of(r)) for r in await store.db[OUTBOX].find().sort("seq").to_list()]
    completed = [(d["requestId"], d["system"]) for t, d in events if t == "kagi.permissions.system_completed"]
    assert sorted(completed) == sorted((c.request_id, c.system) for c in commands)  # each system once
    assert sorted(d["requestId"] for t, d in events if t == "kagi.permissions.request_completed") == sorted(ids)
    granted = {d["userId"] for t, d in events if t == "kagi.permissions.access_changed" and d["before"] is None}
    assert granted == {first.user_id, second.user_id}


async def test_a_revoke_completed_by_a_batch_of_acks_frees_the_id(settings: Settings, store_factory: Any) -> None:
    from kagi_shared.inbox import Message

    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted_user(settings, store, permissions, admin, TAXIS="1010")
    revoke = await permissions.requests.submit(admin, RequestInput(kind="revoke", user_id=user))
    await relay_all(settings, store)
    acks = [await ack(settings, command) for system in ("TAXIS", "INFOSITE")
            for _, command in await commands_on(settings, system, {revoke.id})]
    consumer = acks_consumer(permissions, settings)

    outcomes = await consumer.process_many([Message("permissions.acks", key, value) for key, value in acks])

    assert outcomes == ["handled", "handled"]
    assert (await permissions.requests.get(admin, revoke.id)).status == "complete"
    assert await permissions.repo.grant(user.lower()) is None
    assert (await permissions.requests.submit(admin, new(user, JOHS="J1010"))).status == "submitted"  # ID free


async def field_errors(coro: Any) -> dict[str, str]:
    with pytest.raises(Problem) as refused:
        await coro
    assert refused.value.status in (400, 409), refused.value
    return {e.field: e.reason for e in refused.value.errors}


async def test_filing_rules_give_field_level_reasons(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("permissions")
    reserved = msgspec.structs.replace(settings.permissions, reserved_ids="J-Note.User@Sister.example.jp")
    permissions = await service(msgspec.structs.replace(settings, permissions=reserved), store)
    _, admin = await company_with_admin(permissions, roles=["gas_retailer"], contractors=["委託先A株式会社"])
    rq = permissions.requests
    taken = unique()
    await rq.submit(admin, new(taken, TAXIS="1010"))

    errors = await field_errors(rq.submit(admin, new(taken.upper(), TAXIS="1010")))
    assert "既に登録されているID" in errors["userId"]
    errors = await field_errors(rq.submit(admin, new("j-note.user@sister.example.jp", TAXIS="1010")))
    assert "他システム" in errors["userId"]
    errors = await field_errors(rq.submit(admin, new("bad+id@example.jp", TAXIS="1110", LOACUS="02010")))
    assert set(errors) == {"userId", "permissions.TAXIS", "permissions.LOACUS"}
    errors = await field_errors(rq.submit(admin, new(unique(), TAXIS="1010", PMS="yes")))
    assert set(errors) == {"permissions.PMS"}
    other = new(unique(), TAXIS="1010")
    other.contractor = "未登録の会社"
    assert "委託先事業者" in (await field_errors(rq.submit(admin, other)))["contractor"]
    other.contractor = "委託先A株式会社"
    assert (await rq.submit(admin, other)).contractor == "委託先A株式会社"

    errors = await field_errors(rq.submit(admin, RequestInput(kind="revoke", user_id=unique())))
    assert "利用権限が設定されていない" in errors["userId"]


async def test_sixth_juju_user_is_refused_unless_the_operator_raised_the_limit(settings: Settings,
                                                                              store_factory: Any) -> None:
    _, permissions, company_id, admin = await with_company(settings, store_factory)
    for _ in range(5):
        await permissions.requests.submit(admin, new(unique(), JUJU="yes"))
    errors = await field_errors(permissions.requests.submit(admin, new(unique(), JUJU="yes")))
    assert "5名まで" in errors["permissions.JUJU"]
    await permissions.companies.change(company_id, {"juju_max_users": 6})
    assert (await permissions.requests.submit(admin, new(unique(), JUJU="yes"))).status == "submitted"


async def test_change_and_revoke_timing_and_their_bad_input(settings: Settings, store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted_user(settings, store, permissions, admin, TAXIS="1010", JUJU="yes")
    rq = permissions.requests

    same = RequestInput(kind="change", user_id=user, permissions={"TAXIS": "1010", "JUJU": "yes"})
    assert "現在と同じ" in (await field_errors(rq.submit(admin, same)))["permissions"]

    change = await rq.submit(admin, RequestInput(kind="change", user_id=user.upper(),
                                                 permissions={"TAXIS": "1011", "JUJU": "yes"}))
    assert change.status == "in_progress"  # TAXIS changes take effect on submission, no acceptance
    assert change.system("TAXIS").state == "sent"  # type: ignore[union-attr]
    busy = RequestInput(kind="revoke", user_id=user)
    assert "処理中の申請" in (await field_errors(rq.submit(admin, busy)))["userId"]
    await relay_all(settings, store)
    [(_, command)] = await commands_on(settings, "TAXIS", {change.id})
    assert (command.action, command.before, command.after) == ("change", "1010", "1011")
    consumer = acks_consumer(permissions, settings)
    await consumer.process("permissions.acks", *await ack(settings, command))
    assert (await rq.get(admin, change.id)).status == "complete"

    revoke = await rq.submit(admin, busy)
    assert revoke.status == "in_progress"
    assert {s.system: s.timing for s in revoke.systems} == {"TAXIS": "immediate", "JUJU": "manual",
                                                            "INFOSITE": "immediate"}
    await relay_all(settings, store)
    for system in ("TAXIS", "INFOSITE"):
        [(_, command)] = await commands_on(settings, system, {revoke.id})
        assert command.action == "revoke" and command.effective_on == revoke.submitted_on + timedelta(days=1)
        await consumer.process("permissions.acks", *await ack(settings, command))
    assert await commands_on(settings, "JUJU", {revoke.id}) == []  # JUJU: the operator records completion
    assert (await rq.get(admin, revoke.id)).status == "in_progress"
    done = await rq.complete_system(revoke.id, "JUJU")
    assert done.status == "complete"
    # The user holds nothing any more: the ID is free, and a second revoke has nothing to revoke.
    assert "利用権限が設定されていない" in (await field_errors(rq.submit(admin, busy)))["userId"]


async def test_accepting_a_cancelled_request_is_refused_and_frees_the_id(settings: Settings,
                                                                        store_factory: Any) -> None:
    store, permissions, _, admin = await with_company(settings, store_factory)
    user = unique()
    filed = await permissions.requests.submit(admin, new(user, TAXIS="1010"))
    cancelled = await permissions.requests.cancel(filed.id, "ID誤りのため(電話にて確認済)")
    assert cancelled.status == "cancelled" and cancelled.cancel_reason
    with pytest.raises(Problem) as refused:
        await permissions.requests.accept(filed.id)
    assert refused.value.code == "request.not_submitted"
    assert (await permissions.requests.submit(admin, new(user, TAXIS="1010"))).status == "submitted"
    rows = await store.db[OUTBOX].find({"topic": "notify.requests"}).to_list()
    assert any(data_of(r)["template"] == "request_status_changed" and data_of(r)["variables"]["status"] == "申請取消"
               for r in rows)


async def test_company_termination_revokes_every_grant_of_its_users(settings: Settings, store_factory: Any) -> None:
    store, permissions, company_id, admin = await with_company(settings, store_factory)
    users = [await granted_user(settings, store, permissions, admin, TAXIS="1011"),
             await granted_user(settings, store, permissions, admin, JOHS="J1010", LOACUS="02011")]
    pending = await permissions.requests.submit(admin, new(unique(), TAXIS="1010"))
    [appointment] = await permissions.repo.find_requests({"company_id": company_id, "origin": "company"})
    await relay_all(settings, store)
    [(_, pms)] = await commands_on(settings, "PMS", {appointment.id})
    assert (pms.user_id, pms.after) == (admin.login_id.lower(), "yes")  # the admin's permission-management right
    await applied(settings, permissions, pms)

    company, revoked = await permissions.companies.terminate(company_id)
    assert company.status == "terminated"
    assert revoked == 3  # two users and the admin (permission-management right)
    assert (await permissions.repo.request(pending.id)).status == "cancelled"  # type: ignore[union-attr]
    await relay_all(settings, store)
    revokes = await permissions.repo.find_requests({"company_id": company_id, "origin": "termination"})
    by_user = {r.user_key: {s.system: s.timing for s in r.systems} for r in revokes}
    assert by_user[users[0].lower()] == {"TAXIS": "immediate", "INFOSITE": "immediate"}
    assert by_user[users[1].lower()] == {"JOHS": "immediate", "LOACUS": "manual", "INFOSITE": "immediate"}
    assert by_user[admin.login_id.lower()] == {"PMS": "immediate"}
    ids = {r.id for r in revokes}
    assert {c.user_id for _, c in await commands_on(settings, "TAXIS", ids)} == {users[0].lower()}
    with pytest.raises(Problem) as refused:
        await permissions.requests.submit(admin, new(unique(), TAXIS="1010"))
    assert refused.value.code == "permissions.not_company_admin"


async def test_target_simulator_acknowledges_the_batch(settings: Settings, store_factory: Any) -> None:
    import asyncio
    import uuid

    from kagi_permissions.devtools.target_simulator import FailSwitch, simulate
    from kagi_shared.events import decode
    from kagi_shared.kafka import read_topic

    store, permissions, _, admin = await with_company(settings, store_factory)
    filed = await permissions.requests.submit(admin, new(unique(), TAXIS="1011", JUJU="yes"))
    accepted = await permissions.requests.accept(filed.id)
    await permissions.requests.run_batch(accepted.batch_date)  # type: ignore[arg-type]
    await relay_all(settings, store)

    stop = asyncio.Event()
    task = asyncio.create_task(simulate(settings, stop, FailSwitch(systems=frozenset({"JUJU"})),
                                        group_id=f"test-simulator-{uuid.uuid4().hex[:6]}"))
    acks: list[bytes] = []
    try:
        for _ in range(150):
            acks = [r.value for r in await read_topic(settings, "permissions.acks")
                    if decode(r.value)[1].request_id == filed.id]  # type: ignore[attr-defined]
            if len(acks) >= 3:
                break
            await asyncio.sleep(0.2)
    finally:
        stop.set()
        await task
    consumer = acks_consumer(permissions, settings)
    for value in acks:
        await consumer.process("permissions.acks", filed.id.encode(), value)
    view = await permissions.requests.get(admin, filed.id)
    assert {s.system: s.state for s in view.systems} == {"TAXIS": "applied", "JUJU": "failed", "INFOSITE": "applied"}
    assert "simulator" in (view.system("JUJU").reason or "")  # type: ignore[union-attr]


async def test_concurrent_filings_for_one_user_let_exactly_one_through(settings: Settings,
                                                                      store_factory: Any) -> None:
    import asyncio

    store, permissions, _, admin = await with_company(settings, store_factory)
    user = await granted_user(settings, store, permissions, admin, TAXIS="1010", JUJU="yes")
    changes = [RequestInput(kind="change", user_id=user, permissions={"TAXIS": code, "JUJU": "yes"})
               for code in ("1011", "1012", "1011")]
    results = await asyncio.gather(*(permissions.requests.submit(admin, c) for c in changes), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1, results
    assert {r.code for r in results if isinstance(r, Problem)} == {"request.user_busy"}
    newcomer = unique()
    news = await asyncio.gather(*(permissions.requests.submit(admin, new(newcomer.upper() if i else newcomer,
                                                                         TAXIS="1010")) for i in range(3)),
                                return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in news) == 1, news
