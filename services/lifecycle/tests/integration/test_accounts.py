"""Login, lock, password change/reset, unlock requests and external logins against the real database."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest
from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox, refused
from prometheus_client import REGISTRY

from kagi_lifecycle.bootstrap import consumers
from kagi_shared import metrics
from kagi_shared.events import encode, new_envelope
from kagi_shared.events import lifecycle as ev
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import AUTH_LOGINS


async def test_twenty_parallel_wrong_passwords_lock_exactly_once(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("burst@example.jp", PASSWORD, ["owner"])
    results = await asyncio.gather(*(lc.service.login("burst@example.jp", "Wrong-pass-1") for _ in range(20)),
                                   return_exceptions=True)
    assert all(isinstance(r, Problem) and r.code == "auth.invalid_credentials" for r in results)
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.status == "locked" and stored.lock_reason == "failed_logins"
    events = [e for _, e in await outbox(store)]
    assert len([e for e in events if isinstance(e, ev.AccountLocked)]) == 1
    failures = sorted(e.consecutive_failures for e in events if isinstance(e, ev.LoginFailed))
    assert failures == list(range(1, len(failures) + 1))  # counted one by one, none lost
    assert stored.failed_logins == len(failures) >= 5
    [mail] = await mails(store)
    assert mail.template == "failed_login_lock" and mail.category == "security"
    assert stored.session_version == 1
    locked = await refused(lc.service.login("burst@example.jp", PASSWORD))
    assert locked.code == "auth.account_locked" and locked.extra == {"reason": "failed_logins"}


async def test_a_login_reads_the_account_once_and_answers_with_it_as_written(settings: Settings,
                                                                              store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    await lc.service.create_account("once@example.jp", PASSWORD, ["owner"])
    before = account_reads()
    logged_in = await lc.service.login("once@example.jp", PASSWORD)
    assert account_reads() - before == 1  # by login ID; the login's own write answers with the account
    assert logged_in.last_login_at is not None
    assert logged_in == await lc.accounts.get(logged_in.id)


def account_reads() -> float:
    return REGISTRY.get_sample_value("kagi_db_commands_total", {"service": metrics.process, "command": "find",
                                                                "collection": "accounts"}) or 0.0


async def test_expired_password_is_reported_at_login_and_change_renews_it(settings: Settings,
                                                                          store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    account = await lc.service.create_account("expiry@example.jp", PASSWORD, ["owner"])
    clock.advance(days=185)
    logged_in = await lc.service.login("expiry@example.jp", PASSWORD)
    assert lc.service.password_expired(logged_in, clock())

    policy = await refused(lc.credentials.change(account.id, PASSWORD, PASSWORD))
    assert policy.code == "password.policy_violation"
    assert [v["rule"] for v in policy.extra["violations"]] == ["password.same_as_current"]
    wrong = await refused(lc.credentials.change(account.id, "Not-the-current-1", "Brand-new-2026!"))
    assert wrong.code == "password.current_wrong"
    bad = await refused(lc.credentials.change(account.id, PASSWORD, "expiry?"))
    assert [v["rule"] for v in bad.extra["violations"]] == ["password.too_short", "password.invalid_characters",
                                                             "password.contains_email_local_part"]
    assert "(password.too_short)" in bad.errors[0].reason

    changed = await lc.credentials.change(account.id, PASSWORD, "Brand-new-2026!")
    assert changed.session_version == 1
    assert not lc.service.password_expired(changed, clock())
    assert (await refused(lc.service.login("expiry@example.jp", PASSWORD))).code == "auth.invalid_credentials"
    assert (await lc.service.login("expiry@example.jp", "Brand-new-2026!")).id == account.id
    assert any(isinstance(e, ev.PasswordChanged) for _, e in await outbox(store))


async def test_reset_link_is_single_use_expires_and_hides_unknown_ids(settings: Settings,
                                                                      store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    await lc.service.create_account("reset@example.jp", PASSWORD, ["owner"])
    await lc.credentials.request_reset("nobody@example.jp", "10.0.0.1")  # same answer: nothing raised
    await lc.credentials.request_reset("RESET@example.jp", "10.0.0.1")
    [mail] = await mails(store)
    assert mail.template == "password_reset" and mail.recipient == "reset@example.jp"
    token = re.search(r"token=([\w-]+)", mail.variables["reset_url"]).group(1)  # type: ignore[union-attr]

    weak = await refused(lc.credentials.complete_reset(token, "short"))
    assert weak.code == "password.policy_violation"
    await lc.credentials.complete_reset(token, "Fresh-pass-2026!")
    assert (await refused(lc.credentials.complete_reset(token, "Fresh-pass-2027!"))).code == \
        "password_reset.link_used"
    assert (await lc.service.login("reset@example.jp", "Fresh-pass-2026!")).login_id == "reset@example.jp"

    await lc.credentials.request_reset("reset@example.jp", "10.0.0.1")
    late = re.search(r"token=([\w-]+)", (await mails(store))[-1].variables["reset_url"]).group(1)  # type: ignore
    clock.advance(minutes=30)
    assert (await refused(lc.credentials.complete_reset(late, "Fresh-pass-2028!"))).code == \
        "password_reset.link_expired"
    assert (await refused(lc.credentials.complete_reset("made-up", "Fresh-pass-2028!"))).code == \
        "password_reset.link_invalid"


async def test_reset_requests_are_rate_limited_per_login_id(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    limit = settings.lifecycle.reset_per_login_id
    for n in range(limit):
        await lc.credentials.request_reset("ghost@example.jp", f"10.0.1.{n}")
    limited = await refused(lc.credentials.request_reset("ghost@example.jp", "10.0.2.1"))
    assert limited.status == 429 and limited.code == "rate_limited"
    clock.advance(seconds=settings.lifecycle.reset_rate_window_s + 1)
    await lc.credentials.request_reset("ghost@example.jp", "10.0.2.1")  # the window slid on


async def test_unlock_request_approved_before_the_purge_date(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    account = await lc.service.create_account("unlock@example.jp", PASSWORD, ["owner"])
    operator = await lc.service.create_account("op@example.jp", PASSWORD, ["operator"])
    await lc.unlocks.file("unlock@example.jp", "ロックを解除してください", "10.0.0.9")
    assert await lc.unlocks.listing("pending") == []  # an active account files nothing

    clock.advance(days=185)
    await lc.sweeps.sweep(clock())  # locks it for inactivity
    await lc.unlocks.file("unlock@example.jp", "ロックを解除してください", "10.0.0.9")
    await lc.unlocks.file("unlock@example.jp", "二回目", "10.0.0.9")
    [pending] = await lc.unlocks.listing("pending")
    assert pending.lock_reason == "inactivity"
    approved = await lc.unlocks.approve(pending.id, operator.id, "本人確認済み")
    assert approved.status == "approved" and approved.decided_by == operator.id
    assert (await refused(lc.unlocks.approve(pending.id, operator.id))).code == "unlock.already_decided"
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.status == "active"
    result = (await mails(store, "unlock@example.jp"))[-1]
    assert result.template == "unlock_result" and result.variables["result"] == "承認"
    assert any(isinstance(e, ev.AccountUnlocked) for _, e in await outbox(store))
    # Unlocked but never logged in: the purge still comes on the purge date.
    clock.advance(days=30)
    await lc.sweeps.sweep(clock())
    assert (await lc.accounts.get(account.id)).status == "purged"  # type: ignore[union-attr]


async def test_unlock_after_the_purge_date_is_refused_with_the_reason(settings: Settings,
                                                                       store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    await lc.service.create_account("late@example.jp", PASSWORD, ["owner"])
    operator = await lc.service.create_account("op2@example.jp", PASSWORD, ["operator"])
    clock.advance(days=181)
    await lc.sweeps.sweep(clock())
    await lc.unlocks.file("late@example.jp", "", None)
    [pending] = await lc.unlocks.listing("pending")
    clock.advance(days=30)  # day 211: past the purge date though no sweep ran yet
    problem = await refused(lc.unlocks.approve(pending.id, operator.id))
    assert problem.code == "unlock.after_purge_date" and problem.status == 409
    assert "削除予定日を過ぎている" in problem.title
    [req] = await lc.unlocks.listing()
    assert req.status == "refused"
    result = (await mails(store, "late@example.jp"))[-1]
    assert result.template == "unlock_result" and result.variables["result"] == "却下"


async def test_operator_lock_and_reject(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    account = await lc.service.create_account("oplock@example.jp", PASSWORD, ["owner"])
    operator = await lc.service.create_account("op3@example.jp", PASSWORD, ["operator"])
    locked = await lc.unlocks.operator_lock(account.id, operator.id)
    assert locked.status == "locked" and locked.lock_reason == "operator" and locked.session_version == 1
    assert (await refused(lc.unlocks.operator_lock(account.id, operator.id))).code == "account.not_active"
    await lc.unlocks.file("oplock@example.jp", "", None)
    [pending] = await lc.unlocks.listing("pending")
    rejected = await lc.unlocks.reject(pending.id, operator.id, "本人確認できず")
    assert rejected.status == "rejected"
    assert (await lc.accounts.get(account.id)).status == "locked"  # type: ignore[union-attr]
    reasons = [e.reason for _, e in await outbox(store) if isinstance(e, ev.AccountLocked)]
    assert reasons == ["operator"]


async def test_external_logins_update_last_login_once_and_never_backwards(settings: Settings,
                                                                          store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    account = await lc.service.create_account("ext@example.jp", PASSWORD, ["owner"])
    dead: list[tuple[str, bytes]] = []

    async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        dead.append((topic, value))

    consumer = consumers(lc, dead_letter, settings)[AUTH_LOGINS.name]
    at = clock() + timedelta(days=100)
    envelope = new_envelope(ev.ExternalLoginReported(login_id="EXT@example.jp", at=at, provider="secom"),
                            source="idp", subject="ext@example.jp")
    assert await consumer.process("auth.logins", b"ext", encode(envelope)) == "handled"
    assert await consumer.process("auth.logins", b"ext", encode(envelope)) == "duplicate"
    older = new_envelope(ev.ExternalLoginReported(login_id="ext@example.jp", at=at - timedelta(days=50),
                                                  provider="secom"), source="idp", subject="ext@example.jp")
    assert await consumer.process("auth.logins", b"ext", encode(older)) == "handled"
    same_moment = new_envelope(ev.ExternalLoginReported(login_id="ext@example.jp", at=at, provider="line"),
                               source="idp", subject="ext@example.jp")
    assert await consumer.process("auth.logins", b"ext", encode(same_moment)) == "handled"
    assert await consumer.process("auth.logins", b"ext", b"{not json") == "dead"
    assert len(dead) == 1 and dead[0][0] == "auth.logins.dlt"

    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.last_login_at == at
    # The new period runs from the external login: nothing due 120 days after the issue date.
    assert (await lc.sweeps.sweep(clock() + timedelta(days=125))).examined == 0
    assert (await lc.sweeps.sweep(at + timedelta(days=121))).applied["warning1"] == 1
    # Every distinct report is a login (the late one and the one at the same moment too); the replay is not.
    logins = [e for _, e in await outbox(store) if isinstance(e, ev.LoggedIn)]
    assert [(e.via, e.at) for e in logins] == [("secom", at), ("secom", at - timedelta(days=50)), ("line", at)]


async def test_a_late_external_report_after_a_password_login_is_a_login_that_keeps_the_later_base(
        settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    account = await lc.service.create_account("late@example.jp", PASSWORD, ["owner"])
    reported_at = clock()
    clock.advance(days=1)
    await lc.service.login("late@example.jp", PASSWORD)
    consumer = consumers(lc, _no_dead_letters, settings)[AUTH_LOGINS.name]
    late = new_envelope(ev.ExternalLoginReported(login_id="late@example.jp", at=reported_at, provider="line"),
                        source="idp", subject="late@example.jp")
    assert await consumer.process("auth.logins", b"late", encode(late)) == "handled"
    assert await consumer.process("auth.logins", b"late", encode(late)) == "duplicate"

    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.last_login_at == clock()
    logins = [e for _, e in await outbox(store) if isinstance(e, ev.LoggedIn)]
    assert [(e.via, e.at) for e in logins] == [("kagi", clock()), ("line", reported_at)]
    # The period still runs from the password login: 120 days after the report, nothing is due yet.
    assert (await lc.sweeps.sweep(reported_at + timedelta(days=120, hours=12))).examined == 0


async def _no_dead_letters(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    raise AssertionError(f"dead-lettered on {topic}: {value!r}")


async def test_login_id_and_bodies_are_checked(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    bad = await refused(lc.service.create_account("not an id", "x" * 10_000, ["owner"]))
    assert {e.field for e in bad.errors} == {"loginId", "password"}
    assert (await refused(lc.service.login("nobody@example.jp", "x" * 10_000))).code == "auth.invalid_credentials"
    assert (await refused(lc.service.login("", ""))).code == "auth.invalid_credentials"
    await lc.service.create_account("Mixed.Case@Example.jp", PASSWORD, ["owner"])
    assert (await refused(lc.service.create_account("mixed.case@example.JP", PASSWORD, ["owner"]))).code == \
        "account.exists"
    assert msgspec.json.encode((await lc.service.login("MIXED.case@example.jp", PASSWORD)).login_id) == \
        b'"mixed.case@example.jp"'
    assert datetime.now(UTC) > datetime(2020, 1, 1, tzinfo=UTC)


async def test_a_hash_with_old_parameters_is_upgraded_at_the_next_login(settings: Settings,
                                                                        store_factory: Any) -> None:
    store = await store_factory("lc")
    older = msgspec.structs.replace(settings, security=msgspec.structs.replace(
        settings.security, argon2_time_cost=settings.security.argon2_time_cost + 1))
    before, _ = await make_lifecycle(older, store)
    account = await before.service.create_account("rehash@example.jp", PASSWORD, ["owner"])
    old_hash = account.password_hash
    assert f"t={older.security.argon2_time_cost}" in old_hash

    lc, _ = await make_lifecycle(settings, store)
    with pytest.raises(Problem):
        await lc.service.login("rehash@example.jp", "Wrong-pass-2026!")
    assert (await lc.accounts.get(account.id)).password_hash == old_hash  # a wrong password upgrades nothing

    await lc.service.login("rehash@example.jp", PASSWORD)
    upgraded = (await lc.accounts.get(account.id)).password_hash
    assert upgraded != old_hash and f"t={settings.security.argon2_time_cost}," in upgraded
    assert not lc.service.passwords.needs_rehash(upgraded)
    await lc.service.login("rehash@example.jp", PASSWORD)  # the same password still opens the account
    assert (await lc.accounts.get(account.id)).password_hash == upgraded

    # A hash replaced meanwhile (a password change) is never overwritten by the upgrade.
    assert not await lc.accounts.replace_hash(account.id, old_hash, "anything")
