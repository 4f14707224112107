"""Step-up gating (SPEC §2: the user list and every key need a code verified by this session within 15 minutes),
run on the in-memory step-up repository: the use case of the integration tests, without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from kagi_invite.adapters.memory import MemoryStepUps
from kagi_invite.bootstrap import step_up_policy
from kagi_invite.domain.step_up import StepUpPolicy
from kagi_invite.service.step_up import StepUpService, require_step_up
from kagi_shared.events import decode
from kagi_shared.memory import MemoryTransactions
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from tests.support import opened_notice

OWNER = Caller(account_id="acct-1", login_id="owner@example.jp", email="owner@example.jp", roles=("owner",),
               session_id="s-1")
OTHER_SESSION = msgspec.structs.replace(OWNER, session_id="s-2")


def service(policy: StepUpPolicy | None = None) -> tuple[StepUpService, MemoryTransactions, MemoryStepUps]:
    settings = Settings()
    transactions = MemoryTransactions()
    step_ups = MemoryStepUps(transactions)
    return StepUpService(transactions, step_ups, settings, policy or step_up_policy(settings)), transactions, step_ups


def mailed_code(transactions: MemoryTransactions) -> str:
    request = decode(bytes(transactions.outbox[-1]["value"]))[1]
    return str(opened_notice(request).variables["code"])


async def refused(call: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def test_the_policy_is_built_from_the_settings() -> None:
    policy = step_up_policy(Settings())
    assert policy == StepUpPolicy(code_ttl_s=600, max_attempts=5, window_s=900)
    at = datetime(2026, 1, 5, 1, 0, tzinfo=UTC)
    until = policy.window_until(at)
    assert until == at + timedelta(minutes=15)
    assert policy.window_open(until, until - timedelta(seconds=1)) and not policy.window_open(until, until)
    assert not policy.window_open(None, at)


async def test_no_key_without_a_step_up_of_this_session() -> None:
    svc, transactions, _ = service()
    assert (await refused(svc.require(OWNER))).code == "step_up.required"
    await svc.issue(OWNER)
    assert (await refused(svc.require(OWNER))).code == "step_up.required"  # issued is not verified
    await svc.verify(OWNER, mailed_code(transactions))
    await svc.require(OWNER)
    assert (await refused(svc.require(OTHER_SESSION))).code == "step_up.required"  # another login has none


async def test_the_window_closes_after_the_policy_s_fifteen_minutes() -> None:
    svc, transactions, step_ups = service()
    await svc.issue(OWNER)
    until = await svc.verify(OWNER, mailed_code(transactions))
    policy = svc.policy
    await require_step_up(step_ups, policy, OWNER, until - timedelta(seconds=1))
    assert (await refused(require_step_up(step_ups, policy, OWNER, until))).code == "step_up.required"
    assert until - datetime.now(UTC) <= timedelta(minutes=15)


async def test_the_fifth_wrong_code_voids_it_and_the_right_one_then_opens_nothing() -> None:
    svc, transactions, _ = service()
    await svc.issue(OWNER)
    right = mailed_code(transactions)
    remaining = [(await refused(svc.verify(OWNER, "AAAA-AAAA-AAAA"))).extra.get("remainingAttempts")
                 for _ in range(4)]
    assert remaining == [4, 3, 2, 1]
    assert (await refused(svc.verify(OWNER, "AAAA-AAAA-AAAA"))).code == "step_up.code_voided"
    assert (await refused(svc.verify(OWNER, right))).code == "step_up.code_voided"
    assert (await refused(svc.require(OWNER))).code == "step_up.required"


async def test_a_reissued_code_replaces_the_previous_one() -> None:
    svc, transactions, _ = service()
    await svc.issue(OWNER)
    first = mailed_code(transactions)
    await svc.issue(OWNER)
    second = mailed_code(transactions)
    assert (await refused(svc.verify(OWNER, first))).code == "step_up.code_wrong"  # only the latest is judged
    await svc.verify(OWNER, second)
    assert (await refused(svc.verify(OWNER, second))).code == "step_up.code_used"
