"""Invitation keys, redemption and the user list against the real database, events through the outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

from invite_helpers import link_token, open_step_up, outbox, refusal, started

from kagi_invite.bootstrap import Invite
from kagi_invite.domain.invitations import shown_status
from kagi_invite.service.invitations import IssuedKey
from kagi_shared.mongo import OUTBOX
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

OWNER = Caller(account_id="owner-1", login_id="owner@example.jp", email="owner@example.jp", roles=("owner",),
               session_id="s-1")
OTHER = Caller(account_id="owner-2", login_id="other@example.jp", email="other@example.jp", roles=("owner",),
               session_id="s-1")


async def step_up(invite: Invite, caller: Caller = OWNER, minutes: int = 15) -> None:
    await open_step_up(invite, caller, minutes)


async def key_and_token(invite: Invite, email: str) -> tuple[IssuedKey, str]:
    """The owner's new key (after a step-up) and the token of the confirmation link mailed to ``email``."""
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER)
    return issued, await link_token(invite, email)


async def test_keys_need_a_fresh_step_up(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    assert (await refusal(invite.invitations.issue_key(OWNER))).code == "step_up.required"
    assert (await refusal(invite.invitations.household(OWNER))).code == "step_up.required"
    await step_up(invite, minutes=-1)  # a window that has run out
    assert (await refusal(invite.invitations.issue_key(OWNER))).status == 403
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER)
    assert len(issued.key) == 12
    assert issued.record.expires_at - issued.record.issued_at == timedelta(minutes=60)


async def test_key_is_stored_hashed_and_never_on_a_public_topic(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER, "req-7")
    stored = await invite.store.db["invitation_keys"].find_one({"_id": issued.record.id})
    assert issued.key not in str(stored)
    token = await link_token(invite, "guest@example.jp")
    rows = await invite.store.db[OUTBOX].find({"topic": "invite.events"}).to_list()
    public = " ".join(bytes(r["value"]).decode() for r in rows)
    assert issued.key not in public and token not in public and "guest@example.jp" not in public
    assert token not in str(await invite.store.db["confirmation_links"].find_one({}))
    types = [e["type"] for e in await outbox(invite.store, "invite.events")]
    assert types == ["kagi.invite.key_issued", "kagi.invite.invitation_requested"]


async def test_full_redemption_adds_a_co_user_and_tells_both(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "guest@example.jp")
    typed = f"{issued.key[:4].lower()}-{issued.key[4:8]} {issued.key[8:]}"
    held = await invite.invitations.reserve(token, typed, "10.0.0.1")
    assert held.email == "guest@example.jp" and held.owner_id == OWNER.account_id
    co_user = await invite.invitations.complete(held.reservation_id, "guest-1", "guest@example.jp",
                                                "guest@example.jp", True)
    assert co_user.owner_login_id == OWNER.login_id

    household = await invite.invitations.household(OWNER)
    assert [c.account_id for c in household.co_users] == ["guest-1"]
    assert household.representative_account_id == OWNER.account_id
    [key] = await invite.invitations.list_keys(OWNER)
    assert (key.status, key.redeemed_login_id) == ("redeemed", "guest@example.jp")
    added = [e["data"]["recipient"] for e in await outbox(invite.store, "notify.requests")
             if e["data"]["template"] == "co_user_added"]
    assert sorted(added) == ["guest@example.jp", "owner@example.jp"]

    # one user per key, and the link was single use
    other_token = await link_token(invite, "second@example.jp")
    assert (await refusal(invite.invitations.reserve(other_token, issued.key, None))).code == "invitation.key_used"
    assert (await refusal(invite.invitations.reserve(token, issued.key, None))).code == "invitation.link_used"


async def test_concurrent_redemptions_of_one_key_let_exactly_one_win(settings: Settings,
                                                                   store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER)
    tokens = [await link_token(invite, f"guest{i}@example.jp") for i in range(4)]

    async def redeem(i: int) -> str:
        held = await invite.invitations.reserve(tokens[i], issued.key, None)
        await invite.invitations.complete(held.reservation_id, f"guest-{i}", f"guest{i}@example.jp", "", True)
        return f"guest-{i}"

    results = await asyncio.gather(*(redeem(i) for i in range(4)), return_exceptions=True)
    winners = [r for r in results if isinstance(r, str)]
    assert len(winners) == 1
    assert {r.code for r in results if isinstance(r, Problem)} <= {"invitation.redeem_in_progress",
                                                                    "invitation.key_used"}
    assert [c.account_id for c in (await invite.invitations.household(OWNER)).co_users] == winners


async def test_each_dead_key_has_its_own_error(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory, key_ttl_s=1)
    await step_up(invite)
    expired = await invite.invitations.issue_key(OWNER)
    revoked = await invite.invitations.issue_key(OWNER)
    await invite.invitations.revoke_key(OWNER, revoked.record.id)
    token = await link_token(invite, "guest@example.jp")
    assert (await refusal(invite.invitations.reserve(token, revoked.key, None))).code == "invitation.key_revoked"
    await asyncio.sleep(1.1)
    gone = await refusal(invite.invitations.reserve(token, expired.key, None))
    assert (gone.code, gone.status) == ("invitation.key_expired", 410)
    now = datetime.now(UTC)
    statuses = {k.id: shown_status(k, now) for k in await invite.invitations.list_keys(OWNER)}
    assert statuses == {expired.record.id: "expired", revoked.record.id: "revoked"}
    # a revoked or expired key cannot be revoked again
    again = await refusal(invite.invitations.revoke_key(OWNER, revoked.record.id))
    assert again.code == "invitation.key_not_pending"


async def test_another_owners_key_is_not_found_rather_than_forbidden(settings: Settings,
                                                                     store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER)
    refused = await refusal(invite.invitations.revoke_key(OTHER, issued.record.id))
    assert (refused.status, refused.code) == (404, "invitation.key_not_found")
    missing = await refusal(invite.invitations.revoke_key(OTHER, "no-such-key"))
    assert missing.body() == refused.body()


async def test_five_wrong_keys_void_the_link(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "guest@example.jp")
    wrong = "ZZZZZZZZZZZZ" if issued.key != "ZZZZZZZZZZZZ" else "YYYYYYYYYYYY"
    remaining = []
    for _ in range(4):
        problem = await refusal(invite.invitations.reserve(token, wrong, None))
        assert problem.code == "invitation.key_wrong"
        remaining.append(problem.extra["remainingAttempts"])
    assert remaining == [4, 3, 2, 1]
    assert (await refusal(invite.invitations.reserve(token, wrong, None))).code == "invitation.link_voided"
    assert (await refusal(invite.invitations.reserve(token, issued.key, None))).code == "invitation.link_voided"
    malformed = await refusal(invite.invitations.reserve(await link_token(invite, "b@example.jp"), "ABC", None))
    assert malformed.code == "request.invalid" and malformed.errors[0].field == "key"


async def test_a_key_guess_is_counted_before_it_is_judged(settings: Settings, store_factory: Any) -> None:
    """Issue 15 finding 11: wrong keys that took every guess of the link (void not yet written) leave none."""
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "race@example.jp")
    await invite.store.db["confirmation_links"].update_many(
        {"email": "race@example.jp"}, {"$set": {"wrong_keys": settings.invite.link_max_wrong_keys}})
    assert (await refusal(invite.invitations.reserve(token, issued.key, None))).code == "invitation.link_voided"


async def test_five_failed_logins_on_redemption_void_the_key(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "guest@example.jp")
    codes = []
    for _ in range(5):
        held = await invite.invitations.reserve(token, issued.key, None)
        codes.append((await refusal(invite.invitations.release(held.reservation_id, failed_login=True))).code)
    assert codes == ["invitation.login_failed"] * 4 + ["invitation.key_voided"]
    assert (await refusal(invite.invitations.reserve(token, issued.key, None))).code == "invitation.key_voided"
    [key] = await invite.invitations.list_keys(OWNER)
    assert key.status == "voided"
    assert "kagi.invite.key_voided" in [e["type"] for e in await outbox(invite.store, "invite.events")]


async def test_an_abandoned_reservation_frees_the_key_and_a_late_completion_fails(settings: Settings,
                                                                                store_factory: Any) -> None:
    invite = await started(settings, store_factory, reservation_ttl_s=1)
    issued, token = await key_and_token(invite, "guest@example.jp")
    first = await invite.invitations.reserve(token, issued.key, None)
    busy = await refusal(invite.invitations.reserve(token, issued.key, None))
    assert busy.code == "invitation.link_used" or busy.code == "invitation.redeem_in_progress"
    await asyncio.sleep(1.1)
    second = await invite.invitations.reserve(token, issued.key, None)  # the first gateway died mid-way
    late = await refusal(invite.invitations.complete(first.reservation_id, "guest-1", "g@example.jp", "", True))
    assert late.code == "invitation.reservation_lost"
    await invite.invitations.complete(second.reservation_id, "guest-2", "guest@example.jp", "", True)
    assert [c.account_id for c in (await invite.invitations.household(OWNER)).co_users] == ["guest-2"]


async def test_retries_while_an_interrupted_redemption_holds_the_link_spend_no_attempts(
        settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory, reservation_ttl_s=2, redeem_per_email=3)
    issued, token = await key_and_token(invite, "cutoff@example.jp")
    await invite.invitations.reserve(token, issued.key, None)  # the gateway died before completing
    for _ in range(6):  # twice the per-address limit, as a client retrying every few hundred ms would
        busy = await refusal(invite.invitations.reserve(token, issued.key, None))
        assert busy.code == "invitation.redeem_in_progress", busy.code
        assert 1 <= int(busy.headers["Retry-After"]) <= 2 and busy.extra["retryAfterSeconds"] >= 1
    await asyncio.sleep(2.1)
    held = await invite.invitations.reserve(token, issued.key, None)  # the hold lapsed; nothing was spent
    await invite.invitations.complete(held.reservation_id, "guest-9", "cutoff@example.jp", "", True)


async def test_redemptions_that_a_missing_service_undid_spend_no_attempts(settings: Settings,
                                                                         store_factory: Any) -> None:
    invite = await started(settings, store_factory, redeem_per_email=2)
    issued, token = await key_and_token(invite, "outage@example.jp")
    for _ in range(5):  # the right key each time; lifecycle was away, so the gateway gave the key back
        held = await invite.invitations.reserve(token, issued.key, None)
        await invite.invitations.release(held.reservation_id, failed_login=False)
    held = await invite.invitations.reserve(token, issued.key, None)
    await invite.invitations.complete(held.reservation_id, "guest-7", "outage@example.jp", "", True)
    # Wrong keys are what the limit is for: they still count.
    second = await invite.invitations.issue_key(OWNER)
    other = await link_token(invite, "guesser@example.jp")
    codes_seen = [(await refusal(invite.invitations.reserve(other, "WRONGKEY2345", None))).code for _ in range(3)]
    assert codes_seen[-1] == "rate_limited" and second.key


async def test_a_released_reservation_leaves_the_key_pending(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "guest@example.jp")
    held = await invite.invitations.reserve(token, issued.key, None)
    await invite.invitations.release(held.reservation_id, failed_login=False)  # account creation failed
    [key] = await invite.invitations.list_keys(OWNER)
    assert (key.status, key.attempts) == ("pending", 0)
    assert await invite.invitations.reserve(token, issued.key, None)


async def test_owner_cannot_redeem_their_own_key_nor_a_member_twice(settings: Settings,
                                                                    store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    issued, token = await key_and_token(invite, "owner@example.jp")
    held = await invite.invitations.reserve(token, issued.key, None)
    own = await refusal(invite.invitations.complete(held.reservation_id, OWNER.account_id, OWNER.login_id, "", False))
    assert own.code == "invitation.own_key"
    held = await invite.invitations.reserve(token, issued.key, None)  # released, so usable again
    await invite.invitations.complete(held.reservation_id, "guest-1", "g@example.jp", "", False)
    second = await invite.invitations.issue_key(OWNER)
    again = await invite.invitations.reserve(await link_token(invite, "g@example.jp"), second.key, None)
    twice = await refusal(invite.invitations.complete(again.reservation_id, "guest-1", "g@example.jp", "", False))
    assert twice.code == "invitation.already_member"
    assert {k.status for k in await invite.invitations.list_keys(OWNER)} == {"redeemed", "pending"}


async def test_rate_limits_per_ip_and_per_email_answer_429_with_retry_after(settings: Settings,
                                                                           store_factory: Any) -> None:
    invite = await started(settings, store_factory, request_per_ip=3, request_per_email=2, rate_window_s=60)
    await invite.invitations.request_link("a@example.jp", "10.0.0.9")
    await invite.invitations.request_link("a@example.jp", "10.0.0.9")
    per_email = await refusal(invite.invitations.request_link("A@example.jp", "10.0.0.8"))
    assert (per_email.status, per_email.code) == (429, "rate_limited")
    assert 1 <= int(per_email.headers["Retry-After"]) <= 60
    # the per-email refusal above was the third hit from a different IP; this is the third from .9
    await invite.invitations.request_link("b@example.jp", "10.0.0.9")
    per_ip = await refusal(invite.invitations.request_link("c@example.jp", "10.0.0.9"))
    assert per_ip.code == "rate_limited"
    assert "a@example.jp" not in str(await invite.store.db["rate_hits"].find().to_list())


async def test_request_link_refuses_malformed_addresses_only(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    bad = await refusal(invite.invitations.request_link("not-an-address", None))
    assert bad.code == "request.invalid" and bad.errors[0].field == "email"
    link = await invite.invitations.request_link("nobody-has-this@example.jp", None)
    assert link.expires_at - link.issued_at == timedelta(hours=24)


async def test_user_list_representative_and_removal(settings: Settings, store_factory: Any) -> None:
    invite = await started(settings, store_factory)
    await step_up(invite)
    issued = await invite.invitations.issue_key(OWNER)
    held = await invite.invitations.reserve(await link_token(invite, "guest@example.jp"), issued.key, None)
    await invite.invitations.complete(held.reservation_id, "guest-1", "guest@example.jp", "guest@example.jp", True)
    guest = Caller(account_id="guest-1", login_id="guest@example.jp", email="guest@example.jp", roles=("viewer",),
                session_id="s-1")
    assert [m.owner_id for m in await invite.invitations.memberships(guest)] == [OWNER.account_id]

    await invite.invitations.set_representative(OWNER, "guest-1")
    assert (await invite.invitations.household(OWNER)).representative_account_id == "guest-1"
    stranger = await refusal(invite.invitations.set_representative(OWNER, "stranger"))
    assert stranger.code == "users.not_found"
    assert (await refusal(invite.invitations.remove_co_user(OWNER, OWNER.account_id))).code == \
        "users.cannot_remove_owner"
    assert (await refusal(invite.invitations.remove_co_user(OTHER, "guest-1"))).code == "step_up.required"

    await invite.invitations.remove_co_user(OWNER, "guest-1")
    assert await invite.invitations.memberships(guest) == []  # access ends at once
    household = await invite.invitations.household(OWNER)
    assert household.co_users == [] and household.representative_account_id == OWNER.account_id
    removed = [e["data"]["recipient"] for e in await outbox(invite.store, "notify.requests")
               if e["data"]["template"] == "co_user_removed"]
    assert sorted(removed) == ["guest@example.jp", "owner@example.jp"]
    assert (await refusal(invite.invitations.remove_co_user(OWNER, "guest-1"))).code == "users.not_found"
