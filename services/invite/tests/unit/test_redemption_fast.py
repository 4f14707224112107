"""Redemption's first phase (SPEC §2: 5 wrong keys void the link; one key adds exactly one user), run on the
in-memory repositories: the use case of the integration tests without a database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from kagi_invite.adapters.memory import MemoryInvitations, MemoryStepUps
from kagi_invite.bootstrap import invitation_policy, step_up_policy
from kagi_invite.domain.invitations import InvitationPolicy
from kagi_invite.service.invitations import InvitationService
from kagi_shared.events import decode
from kagi_shared.memory import MemoryTransactions
from kagi_shared.mongo import Tx
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from tests.support import opened_notice

OWNER = Caller(account_id="owner-1", login_id="owner@example.jp", email="owner@example.jp", roles=("owner",),
               session_id="s-1")
WRONG_KEY = "ABCD-EFGH-JKMN"


async def service() -> tuple[InvitationService, MemoryTransactions, MemoryInvitations]:
    settings = Settings()
    transactions = MemoryTransactions()
    invitations = MemoryInvitations(transactions)
    step_ups = MemoryStepUps(transactions)
    svc = InvitationService(transactions, invitations, step_ups, settings, invitation_policy(settings),
                            step_up_policy(settings))

    async def stepped_up(tx: Tx) -> None:  # the owner verified a step-up code a moment ago
        await step_ups.open_window(tx, OWNER.account_id, "s-1", datetime.now(UTC) + timedelta(minutes=15))

    await transactions.transaction(stepped_up)
    return svc, transactions, invitations


async def mailed_token(svc: InvitationService, transactions: MemoryTransactions, email: str) -> str:
    await svc.request_link(email, "203.0.113.7")
    request = decode(bytes(transactions.outbox[-1]["value"]))[1]
    return parse_qs(urlparse(opened_notice(request).variables["url"]).query)["token"][0]


async def refused(call: Any) -> Problem:
    with pytest.raises(Problem) as caught:
        await call
    return caught.value


def test_the_policy_is_built_from_the_settings() -> None:
    assert invitation_policy(Settings()) == InvitationPolicy(key_ttl_s=3600, key_max_attempts=5, link_ttl_s=86400,
                                                             link_max_wrong_keys=5, reservation_ttl_s=120)


async def test_the_right_key_holds_key_and_link_for_one_invitee() -> None:
    svc, transactions, invitations = await service()
    issued = await svc.issue_key(OWNER)
    assert (issued.record.expires_at - issued.record.issued_at).total_seconds() == 3600
    token = await mailed_token(svc, transactions, "invitee@example.jp")
    held = await svc.reserve(token, issued.key.lower(), "203.0.113.7")  # any case
    assert held.owner_id == OWNER.account_id and held.email == "invitee@example.jp"
    assert (await invitations.key_by_reservation(held.reservation_id)) is not None
    other = await mailed_token(svc, transactions, "second@example.jp")
    assert (await refused(svc.reserve(other, issued.key, "203.0.113.8"))).code == "invitation.redeem_in_progress"
    assert (await refused(svc.reserve(token, issued.key, "203.0.113.7"))).code == "invitation.redeem_in_progress"


async def test_the_fifth_wrong_key_voids_the_link() -> None:
    svc, transactions, _ = await service()
    issued = await svc.issue_key(OWNER)
    token = await mailed_token(svc, transactions, "invitee@example.jp")
    remaining = [(await refused(svc.reserve(token, WRONG_KEY, "203.0.113.7"))).extra.get("remainingAttempts")
                 for _ in range(4)]
    assert remaining == [4, 3, 2, 1]
    assert (await refused(svc.reserve(token, WRONG_KEY, "203.0.113.7"))).code == "invitation.link_voided"
    assert (await refused(svc.reserve(token, issued.key, "203.0.113.7"))).code == "invitation.link_voided"


async def test_a_right_key_gives_its_guess_back() -> None:
    svc, transactions, invitations = await service()
    issued = await svc.issue_key(OWNER)
    token = await mailed_token(svc, transactions, "invitee@example.jp")
    for _ in range(4):
        await refused(svc.reserve(token, WRONG_KEY, "203.0.113.7"))
    await svc.reserve(token, issued.key, "203.0.113.7")
    link = await invitations.link_by_reservation(next(iter(invitations.links.values()))["reservation_id"])
    assert link is not None and link.wrong_keys == 4 and link.status == "reserved"


async def test_no_key_without_the_owner_s_step_up() -> None:
    svc, _, _ = await service()
    stranger = Caller(account_id="owner-2", login_id="o2@example.jp", email="o2@example.jp", roles=("owner",),
                      session_id="s-9")
    assert (await refused(svc.issue_key(stranger))).code == "step_up.required"
