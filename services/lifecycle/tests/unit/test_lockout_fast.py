"""The lock after consecutive wrong passwords (SPEC §4), run on the in-memory adapters: the same use case the
integration tests drive on the embedded database, in milliseconds. ``tests/contract`` keeps the fakes honest."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fast_lifecycle import PASSWORD, events, fast_accounts

from kagi_lifecycle.bootstrap import lockout_policy
from kagi_lifecycle.domain.accounts import LockoutPolicy
from kagi_shared.events import lifecycle as ev
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

service = fast_accounts


async def refused(call: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def test_the_policy_is_built_from_the_settings() -> None:
    assert lockout_policy(Settings()) == LockoutPolicy(threshold=5, privileged_lock_s=900)
    policy = LockoutPolicy(threshold=3)
    assert [policy.locks(n) for n in (1, 2, 3, 4)] == [False, False, True, True]
    assert [policy.remaining(n) for n in (0, 2, 3, 9)] == [3, 1, 0, 0]


async def test_the_fifth_wrong_password_locks_and_the_right_one_is_then_refused() -> None:
    svc, transactions, accounts, _ = service()
    account = await svc.create_account("hanako@example.jp", PASSWORD, ["owner"])
    for _ in range(4):
        assert (await refused(svc.login("hanako@example.jp", "wrong"))).code == "auth.invalid_credentials"
    assert (await accounts.get(account.id)).status == "active"  # type: ignore[union-attr]
    assert (await refused(svc.login("hanako@example.jp", "wrong"))).code == "auth.invalid_credentials"
    locked = await accounts.get(account.id)
    assert locked is not None and locked.status == "locked" and locked.lock_reason == "failed_logins"
    assert locked.session_version == 1  # its sessions end
    problem = await refused(svc.login("hanako@example.jp", PASSWORD))
    assert problem.code == "auth.account_locked" and problem.extra == {"reason": "failed_logins"}
    published = events(transactions)
    assert [e.consecutive_failures for e in published if isinstance(e, ev.LoginFailed)] == [1, 2, 3, 4, 5]
    assert [e.reason for e in published if isinstance(e, ev.AccountLocked)] == ["failed_logins"]
    assert [e.template for e in published if getattr(e, "template", None)] == ["failed_login_lock"]


async def test_a_right_password_before_the_threshold_starts_the_count_again() -> None:
    svc, _, accounts, clock = service()
    account = await svc.create_account("hanako@example.jp", PASSWORD, ["owner"])
    for _ in range(4):
        await refused(svc.login("hanako@example.jp", "wrong"))
    clock.at += timedelta(minutes=1)
    await svc.login("hanako@example.jp", PASSWORD)
    for _ in range(4):
        await refused(svc.login("hanako@example.jp", "wrong"))
    after = await accounts.get(account.id)
    assert after is not None and after.status == "active" and after.failed_logins == 4


async def test_the_threshold_is_the_policy_s() -> None:
    svc, _, accounts, _ = service(login_lockout_threshold=2)
    account = await svc.create_account("hanako@example.jp", PASSWORD, ["owner"])
    await refused(svc.login("hanako@example.jp", "wrong"))
    await refused(svc.login("hanako@example.jp", "wrong"))
    assert (await accounts.get(account.id)).status == "locked"  # type: ignore[union-attr]


async def test_a_privileged_lock_ends_by_itself_after_the_policy_s_time() -> None:
    svc, transactions, accounts, clock = service()
    account = await svc.create_account("ops@kagi.example.jp", PASSWORD, ["operator"])  # TOTP not enrolled yet
    for _ in range(5):
        await refused(svc.login("ops@kagi.example.jp", "wrong"))
    clock.at += timedelta(minutes=14, seconds=59)
    assert (await refused(svc.login("ops@kagi.example.jp", PASSWORD))).code == "auth.account_locked"
    clock.at += timedelta(seconds=1)
    logged_in = await svc.login("ops@kagi.example.jp", PASSWORD)
    assert logged_in.status == "active" and logged_in.failed_logins == 0
    assert [e.by for e in events(transactions) if isinstance(e, ev.AccountUnlocked)] == ["system:lock_expired"]
    owner = await svc.create_account("owner@example.jp", PASSWORD, ["owner"])
    for _ in range(5):
        await refused(svc.login("owner@example.jp", "wrong"))
    clock.at += timedelta(days=30)
    assert (await refused(svc.login("owner@example.jp", PASSWORD))).code == "auth.account_locked"  # only an operator
    assert (await accounts.get(owner.id)).status == "locked"  # type: ignore[union-attr]
    assert account.id != owner.id


async def test_a_taken_login_id_is_refused_with_nothing_written() -> None:
    svc, transactions, accounts, _ = service()
    await svc.create_account("hanako@example.jp", PASSWORD, ["owner"])
    rows = len(transactions.outbox)
    problem = await refused(svc.create_account("HANAKO@example.jp", PASSWORD, ["owner"]))
    assert problem.status == 409 and problem.code == "account.exists"
    assert len(transactions.outbox) == rows and len(accounts.docs) == 1
