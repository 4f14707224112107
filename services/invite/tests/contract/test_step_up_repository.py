"""One contract for the step-up repository: every assertion runs against the in-memory adapter (the fast tier's)
and the Mongo adapter on the embedded database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kagi_invite.adapters.memory import MemoryStepUps
from kagi_invite.adapters.repository import StepUpRepository
from kagi_invite.domain.step_up import StepUpCode
from kagi_invite.service.ports import StepUps
from kagi_shared.mongo import Transactions, Tx

NOW = datetime.now(UTC).replace(microsecond=0)  # whole milliseconds: MongoDB keeps no finer
LATER = NOW + timedelta(hours=1)  # windows lie ahead: the database drops lapsed ones by itself


@pytest.fixture
async def repo(contract_backend: Any) -> tuple[Transactions, StepUps]:
    return await contract_backend.open(MemoryStepUps, StepUpRepository)


def code(code_id: str, account_id: str = "acct-1", minutes: int = 0) -> StepUpCode:
    issued = NOW + timedelta(minutes=minutes)
    return StepUpCode(id=code_id, account_id=account_id, code_hash=f"hash-{code_id}", issued_at=issued,
                      expires_at=issued + timedelta(minutes=10))


def issuing(step_ups: StepUps, c: StepUpCode) -> Callable[[Tx], Awaitable[None]]:
    async def fn(tx: Tx) -> None:
        await step_ups.replace_active(tx, c)
    return fn


async def test_a_new_code_replaces_the_active_one(repo: tuple[Transactions, StepUps]) -> None:
    transactions, step_ups = repo
    await transactions.transaction(issuing(step_ups, code("a")))
    await transactions.transaction(issuing(step_ups, code("b", minutes=1)))
    await transactions.transaction(issuing(step_ups, code("other", account_id="acct-2")))
    latest = await step_ups.latest("acct-1")
    assert latest == code("b", minutes=1)
    assert await step_ups.claim_attempt("a", 5) is None  # replaced: no more guesses on it

    async def reuse_a(tx: Tx) -> bool:
        return await step_ups.set_status(tx, "a", "used")

    assert await transactions.transaction(reuse_a) is False
    assert (await step_ups.latest("acct-2")) == code("other", account_id="acct-2")  # other accounts untouched
    assert await step_ups.latest("acct-3") is None


async def test_attempts_are_counted_up_to_the_limit(repo: tuple[Transactions, StepUps]) -> None:
    transactions, step_ups = repo
    await transactions.transaction(issuing(step_ups, code("a")))
    counted = [await step_ups.claim_attempt("a", 3) for _ in range(4)]
    assert [c.attempts if c else None for c in counted] == [1, 2, 3, None]
    assert await step_ups.claim_attempt("missing", 3) is None


async def test_a_status_moves_only_from_the_expected_one(repo: tuple[Transactions, StepUps]) -> None:
    transactions, step_ups = repo
    await transactions.transaction(issuing(step_ups, code("a")))

    def setting(status: str, expected: str = "active") -> Callable[[Tx], Awaitable[bool]]:
        async def fn(tx: Tx) -> bool:
            return await step_ups.set_status(tx, "a", status, expected)
        return fn

    assert await transactions.transaction(setting("used")) is True
    assert await transactions.transaction(setting("voided")) is False  # a concurrent verify used it first
    assert await transactions.transaction(setting("voided", "used")) is True
    assert (await step_ups.latest("acct-1")).status == "voided"  # type: ignore[union-attr]
    assert await step_ups.claim_attempt("a", 5) is None


async def test_a_window_belongs_to_one_session(repo: tuple[Transactions, StepUps]) -> None:
    transactions, step_ups = repo

    def opening(session_id: str, until: datetime) -> Callable[[Tx], Awaitable[None]]:
        async def fn(tx: Tx) -> None:
            await step_ups.open_window(tx, "acct-1", session_id, until)
        return fn

    assert await step_ups.window("acct-1", "s-1") is None
    await transactions.transaction(opening("s-1", LATER))
    assert await step_ups.window("acct-1", "s-1") == LATER
    assert await step_ups.window("acct-1", "s-2") is None
    assert await step_ups.window("acct-1", None) is None
    assert await step_ups.window("acct-2", "s-1") is None
    await transactions.transaction(opening("s-1", LATER + timedelta(minutes=5)))
    assert await step_ups.window("acct-1", "s-1") == LATER + timedelta(minutes=5)


async def test_nothing_of_a_failed_transaction_stays(repo: tuple[Transactions, StepUps]) -> None:
    transactions, step_ups = repo
    await transactions.transaction(issuing(step_ups, code("a")))

    async def fails(tx: Tx) -> None:
        await step_ups.replace_active(tx, code("b", minutes=1))
        await step_ups.open_window(tx, "acct-1", "s-1", LATER)
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await transactions.transaction(fails)
    assert (await step_ups.latest("acct-1")) == code("a")
    assert await step_ups.window("acct-1", "s-1") is None
