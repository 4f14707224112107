"""One contract for the accounts repository: every assertion runs against the in-memory adapter (the fast tier's)
and the Mongo adapter on the embedded database, so the fakes the use-case unit tests rely on cannot drift."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kagi_lifecycle.adapters.memory import MemoryAccounts
from kagi_lifecycle.adapters.repository import AccountRepository
from kagi_lifecycle.domain.accounts import Account, AccountExists
from kagi_lifecycle.service.ports import Accounts
from kagi_shared.mongo import Transactions, Tx

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # whole milliseconds: MongoDB keeps no finer


@pytest.fixture
async def repo(contract_backend: Any) -> tuple[Transactions, Accounts]:
    return await contract_backend.open(MemoryAccounts, AccountRepository)


def account(login_id: str = "hanako@example.jp", **fields: Any) -> Account:
    values: dict[str, Any] = {"id": str(uuid.uuid4()), "login_id": login_id, "email": login_id,
                              "password_hash": "hash-1", "roles": ["owner"], "issued_at": T0,
                              "password_changed_at": T0, **fields}
    return Account(**values)


async def run(transactions: Transactions, fn: Callable[[Tx], Awaitable[Any]]) -> Any:
    return await transactions.transaction(fn)


async def stored(transactions: Transactions, accounts: Accounts, a: Account) -> Account:
    async def add(tx: Tx) -> None:
        await accounts.add(tx, a)

    await run(transactions, add)
    return a


async def test_an_added_account_reads_back_by_id_and_login_id(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account(next_stage="warning1", next_stage_at=T0 + timedelta(days=90)))
    assert await accounts.get(a.id) == a
    assert await accounts.by_login_id("hanako@example.jp") == a
    assert await accounts.get("nobody") is None
    assert await accounts.by_login_id("nobody@example.jp") is None
    assert await accounts.session_state(a.id) == (0, "active", ["owner"])
    assert await accounts.session_state("nobody") is None


async def test_a_taken_login_id_is_account_exists_and_nothing_of_the_transaction_stays(
        repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    first = await stored(transactions, accounts, account())
    other = account(login_id="jiro@example.jp")
    twin = account()

    async def both(tx: Tx) -> None:
        await accounts.add(tx, other)
        await accounts.add(tx, twin)

    with pytest.raises(AccountExists):
        await run(transactions, both)
    assert await accounts.get(other.id) is None  # rolled back with the failed add
    assert await accounts.get(twin.id) is None
    assert await accounts.by_login_id("hanako@example.jp") == first


async def test_update_applies_only_while_the_account_is_as_read(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account())

    async def lock(tx: Tx) -> bool:
        return await accounts.update(tx, a.id, {"status": "locked", "locked_at": T0}, when={"status": "active"},
                                     bump_session=True)

    assert await run(transactions, lock) is True
    assert await run(transactions, lock) is False  # no longer active: the second lock changes nothing
    after = await accounts.get(a.id)
    assert after is not None and after.status == "locked" and after.locked_at == T0 and after.session_version == 1

    async def end(tx: Tx) -> None:
        await accounts.end_sessions(tx, a.id)

    await run(transactions, end)
    assert await accounts.session_state(a.id) == (2, "locked", ["owner"])

    async def missing(tx: Tx) -> bool:
        return await accounts.update(tx, "nobody", {"status": "locked"})

    assert await run(transactions, missing) is False


async def test_last_login_only_moves_forward(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account())

    def move(at: datetime, active_only: bool = True) -> Callable[[Tx], Awaitable[bool]]:
        async def fn(tx: Tx) -> bool:
            return await accounts.move_last_login(tx, a.id, at, {"last_login_at": at}, active_only=active_only) \
                is not None
        return fn

    assert await run(transactions, move(T0 + timedelta(hours=2))) is True
    assert await run(transactions, move(T0 + timedelta(hours=1))) is False  # earlier: a late report
    assert await run(transactions, move(T0 + timedelta(hours=2))) is False  # the same moment again
    assert (await accounts.get(a.id)).last_login_at == T0 + timedelta(hours=2)  # type: ignore[union-attr]

    async def lock(tx: Tx) -> bool:
        return await accounts.update(tx, a.id, {"status": "locked"})

    await run(transactions, lock)
    assert await run(transactions, move(T0 + timedelta(hours=3))) is False  # a login needs an active account
    assert await run(transactions, move(T0 + timedelta(hours=3), active_only=False)) is True  # a report does not

    async def purge(tx: Tx) -> bool:
        return await accounts.update(tx, a.id, {"status": "purged"})

    await run(transactions, purge)
    assert await run(transactions, move(T0 + timedelta(hours=4), active_only=False)) is False


async def test_a_moved_last_login_answers_with_the_account_as_written(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account(failed_logins=2))
    at = T0 + timedelta(hours=2)

    async def move(tx: Tx) -> Account | None:
        return await accounts.move_last_login(tx, a.id, at, {"last_login_at": at, "failed_logins": 0},
                                              active_only=True)

    written = await run(transactions, move)
    assert written is not None and (written.last_login_at, written.failed_logins) == (at, 0)
    assert written == await accounts.get(a.id)
    assert await run(transactions, move) is None  # the same moment again: not moved, nothing to answer


async def test_a_totp_step_is_taken_once(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account())

    def take(step: int) -> Callable[[Tx], Awaitable[bool]]:
        async def fn(tx: Tx) -> bool:
            return await accounts.take_totp_step(tx, a.id, step)
        return fn

    assert await run(transactions, take(100)) is True
    assert await run(transactions, take(100)) is False
    assert await run(transactions, take(99)) is False
    assert await run(transactions, take(101)) is True
    assert (await accounts.get(a.id)).totp_last_step == 101  # type: ignore[union-attr]


async def test_failures_are_counted_per_account(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account())

    async def fail(tx: Tx) -> tuple[int, int | None]:
        return await accounts.increment_failures(tx, a.id), await accounts.increment_secret_failures(tx, a.id)

    assert await run(transactions, fail) == (1, 1)
    assert await run(transactions, fail) == (2, 2)

    async def unknown(tx: Tx) -> tuple[int, int | None]:
        return await accounts.increment_failures(tx, "nobody"), await accounts.increment_secret_failures(tx, "nobody")

    assert await run(transactions, unknown) == (0, None)

    async def lock(tx: Tx) -> bool:
        return await accounts.update(tx, a.id, {"status": "locked"})

    await run(transactions, lock)
    assert await run(transactions, fail) == (3, None)  # secret answers are counted on active accounts only


async def test_the_hash_is_replaced_only_if_it_is_still_the_verified_one(
        repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    a = await stored(transactions, accounts, account())
    assert await accounts.replace_hash(a.id, "hash-0", "hash-2") is False
    assert await accounts.replace_hash(a.id, "hash-1", "hash-2") is True
    assert (await accounts.get(a.id)).password_hash == "hash-2"  # type: ignore[union-attr]  # noqa: S105


async def test_due_accounts_come_in_due_order(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    late = await stored(transactions, accounts, account("late@example.jp", next_stage_at=T0 + timedelta(days=3)))
    early = await stored(transactions, accounts, account("early@example.jp", next_stage_at=T0 + timedelta(days=1)))
    await stored(transactions, accounts, account("future@example.jp", next_stage_at=T0 + timedelta(days=9)))
    await stored(transactions, accounts, account("never@example.jp"))
    as_of = T0 + timedelta(days=3)
    assert await accounts.due_ids(as_of) == [early.id, late.id]
    assert await accounts.due_ids(as_of, limit=1) == [early.id]
    assert [a.id for a in await accounts.due(as_of)] == [early.id, late.id]
    assert await accounts.due_ids(T0) == []


async def test_the_ladder_backfill_runs_once(repo: tuple[Transactions, Accounts]) -> None:
    transactions, accounts = repo
    await stored(transactions, accounts, account(next_stage_at=T0))
    planned: list[datetime] = []

    def plan(last_login_at: datetime | None, issued_at: datetime) -> tuple[str, datetime]:
        planned.append(issued_at)
        return "warning1", issued_at

    assert await accounts.schedule_unscheduled(plan) == 0  # every stored account already has its stage
    assert await accounts.schedule_unscheduled(plan) == 0
    assert planned == []
