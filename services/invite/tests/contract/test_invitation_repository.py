"""One contract for the invitation repository (keys, links, co-users, households, rate-limit hits): every assertion
runs against the in-memory adapter (the fast tier's) and the Mongo adapter on the embedded database."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from kagi_invite.adapters.invitations import InvitationRepository
from kagi_invite.adapters.memory import MemoryInvitations
from kagi_invite.domain.invitations import AlreadyMember, ConfirmationLink, CoUser, InvitationKey
from kagi_invite.service.ports import Invitations
from kagi_shared.mongo import Transactions, Tx

NOW = datetime.now(UTC).replace(microsecond=0)  # whole milliseconds: MongoDB keeps no finer
HOLD = NOW + timedelta(minutes=2)

Repo = tuple[Transactions, Invitations]


@pytest.fixture
async def repo(contract_backend: Any) -> Repo:
    return await contract_backend.open(MemoryInvitations, InvitationRepository)


def key(key_id: str = "k1", owner: str = "owner-1", minutes: int = 60) -> InvitationKey:
    return InvitationKey(id=key_id, owner_id=owner, key_hash=f"hash-{key_id}", issued_at=NOW,
                         expires_at=NOW + timedelta(minutes=minutes))


def link(link_id: str = "l1") -> ConfirmationLink:
    return ConfirmationLink(id=link_id, email="invitee@example.jp", token_hash=f"token-{link_id}", issued_at=NOW,
                            expires_at=NOW + timedelta(hours=24))


def co_user(owner: str, account: str, minutes: int = 0) -> CoUser:
    return CoUser(owner_id=owner, account_id=account, login_id=f"{account}@example.jp", email=f"{account}@example.jp",
                  key_id="k1", added_at=NOW + timedelta(minutes=minutes))



async def run(transactions: Transactions, fn: Callable[[Tx], Awaitable[Any]]) -> Any:
    return await transactions.transaction(fn)


async def added(repo: Repo, *keys: InvitationKey, links: tuple[ConfirmationLink, ...] = ()) -> None:
    transactions, invitations = repo

    async def add(tx: Tx) -> None:
        for k in keys:
            await invitations.add_key(tx, k, "owner@example.jp", "owner-mail@example.jp")
        for li in links:
            await invitations.add_link(tx, li)

    await run(transactions, add)


async def test_keys_read_back_by_hash_owner_and_issue_order(repo: Repo) -> None:
    _, invitations = repo
    older = key("k0")
    newer = InvitationKey(id="k1", owner_id="owner-1", key_hash="hash-k1", issued_at=NOW + timedelta(minutes=1),
                          expires_at=NOW + timedelta(minutes=61))
    await added(repo, older, newer, key("k9", owner="owner-2"))
    assert await invitations.key_by_hash("hash-k0") == older
    assert await invitations.key_by_hash("nope") is None
    assert await invitations.key_of_owner("owner-1", "k1") == newer
    assert await invitations.key_of_owner("owner-2", "k1") is None  # another owner's key looks missing
    assert [k.id for k in await invitations.keys_of_owner("owner-1")] == ["k1", "k0"]
    assert await invitations.owner_contact("k0") == ("owner@example.jp", "owner-mail@example.jp")
    assert await invitations.owner_contact("nope") == ("", "")


async def test_one_reserver_holds_a_key_until_its_hold_lapses(repo: Repo) -> None:
    transactions, invitations = repo
    await added(repo, key("k1"), key("old", minutes=-1))

    def reserving(key_id: str, rid: str, now: datetime) -> Callable[[Tx], Awaitable[bool]]:
        async def fn(tx: Tx) -> bool:
            return await invitations.reserve_key(tx, key_id, rid, HOLD, now)
        return fn

    assert await run(transactions, reserving("k1", "r1", NOW)) is True
    assert await run(transactions, reserving("k1", "r2", NOW)) is False  # held
    assert (await invitations.key_by_reservation("r1")).status == "reserved"  # type: ignore[union-attr]
    assert await run(transactions, reserving("k1", "r2", HOLD)) is True  # the hold ran out
    assert await invitations.key_by_reservation("r1") is None
    assert await run(transactions, reserving("old", "r3", NOW)) is False  # expired
    assert await run(transactions, reserving("missing", "r3", NOW)) is False


async def test_a_released_key_counts_the_failed_login_and_a_redeemed_one_is_spent(repo: Repo) -> None:
    transactions, invitations = repo
    await added(repo, key("k1"))

    async def reserve(tx: Tx) -> bool:
        return await invitations.reserve_key(tx, "k1", "r1", HOLD, NOW)

    async def release(tx: Tx) -> InvitationKey | None:
        return await invitations.release_key(tx, "r1", True)

    await run(transactions, reserve)
    released = await run(transactions, release)
    assert released is not None and released.status == "pending" and released.attempts == 1
    assert released.reservation_id is None and released.reserved_until is None
    assert await run(transactions, release) is None  # nothing holds it now

    async def redeem(tx: Tx) -> bool:
        return await invitations.redeem_key(tx, "r1", "acct-9", "nine@example.jp", NOW)

    assert await run(transactions, redeem) is False  # not reserved
    await run(transactions, reserve)
    assert await run(transactions, redeem) is True
    spent = await invitations.key_of_owner("owner-1", "k1")
    assert spent is not None and spent.status == "redeemed" and spent.redeemed_by == "acct-9"
    assert spent.redeemed_at == NOW and spent.reserved_until is None
    assert await run(transactions, reserve) is False

    async def revoke(tx: Tx) -> bool:
        return await invitations.set_key_status(tx, "k1", "revoked", ("pending", "reserved"))

    assert await run(transactions, revoke) is False  # only from the expected statuses


async def test_wrong_key_guesses_are_counted_while_the_link_has_some_left(repo: Repo) -> None:
    transactions, invitations = repo
    await added(repo, links=(link("l1"),))
    assert [await invitations.claim_key_guess("l1", 3) for _ in range(4)] == [1, 2, 3, None]
    await invitations.give_back_key_guess("l1")
    assert (await invitations.link_by_hash("token-l1")).wrong_keys == 2  # type: ignore[union-attr]
    assert await invitations.claim_key_guess("l1", 3) == 3

    async def void(tx: Tx) -> None:
        await invitations.set_link_status(tx, "l1", "voided")

    await run(transactions, void)
    assert await invitations.claim_key_guess("l1", 9) is None
    assert await invitations.claim_key_guess("missing", 9) is None


async def test_a_link_is_held_then_finished(repo: Repo) -> None:
    transactions, invitations = repo
    await added(repo, links=(link("l1"),))

    def reserving(rid: str, now: datetime) -> Callable[[Tx], Awaitable[bool]]:
        async def fn(tx: Tx) -> bool:
            return await invitations.reserve_link(tx, "l1", rid, HOLD, now)
        return fn

    assert await run(transactions, reserving("r1", NOW)) is True
    assert await run(transactions, reserving("r2", NOW)) is False

    async def finish(tx: Tx) -> None:
        await invitations.finish_link(tx, "r1", "used")

    await run(transactions, finish)
    used = await invitations.link_by_reservation("r1")
    assert used is not None and used.status == "used" and used.reserved_until is None
    assert await run(transactions, reserving("r2", HOLD)) is False  # used links are never held again


async def test_co_users_once_per_owner_in_order_and_gone_with_the_account(repo: Repo) -> None:
    transactions, invitations = repo

    def adding(c: CoUser) -> Callable[[Tx], Awaitable[None]]:
        async def fn(tx: Tx) -> None:
            await invitations.add_co_user(tx, c)
        return fn

    await run(transactions, adding(co_user("owner-1", "b", minutes=2)))
    await run(transactions, adding(co_user("owner-1", "a", minutes=1)))
    await run(transactions, adding(co_user("owner-2", "a")))
    with pytest.raises(AlreadyMember):
        await run(transactions, adding(co_user("owner-1", "a", minutes=5)))
    assert [c.account_id for c in await invitations.co_users_of("owner-1")] == ["a", "b"]
    assert [c.owner_id for c in await invitations.memberships("a")] == ["owner-2", "owner-1"]
    assert await invitations.co_user("owner-1", "a") == co_user("owner-1", "a", minutes=1)
    assert await invitations.representative("owner-1") == "owner-1"

    async def household(tx: Tx) -> None:
        await invitations.set_representative(tx, "owner-1", "b")

    await run(transactions, household)
    assert await invitations.representative("owner-1") == "b"

    async def purge(tx: Tx) -> int:
        return await invitations.remove_account(tx, "a")

    assert await run(transactions, purge) == 2

    async def remove(tx: Tx) -> bool:
        return await invitations.remove_co_user(tx, "owner-1", "b")

    assert await run(transactions, remove) is True
    assert await run(transactions, remove) is False
    assert await invitations.co_users_of("owner-1") == []


async def test_hits_count_in_their_window_and_a_success_is_forgiven(repo: Repo) -> None:
    _, invitations = repo
    start = NOW - timedelta(minutes=10)
    counts = [await invitations.hit("redeem:ip:1", NOW + timedelta(seconds=n), start) for n in range(3)]
    assert counts == [1, 2, 3]
    assert await invitations.hit("redeem:ip:2", NOW, start) == 1
    assert await invitations.nth_hit("redeem:ip:1", start, 1) == NOW + timedelta(seconds=1)
    assert await invitations.nth_hit("redeem:ip:1", start, 3) is None
    await invitations.forgive("redeem:ip:1")  # the newest goes
    assert await invitations.nth_hit("redeem:ip:1", start, 2) is None
    assert await invitations.hit("redeem:ip:1", NOW + timedelta(seconds=9), NOW) == 2  # the window starts later


async def test_nothing_of_a_failed_transaction_stays(repo: Repo) -> None:
    transactions, invitations = repo

    async def fails(tx: Tx) -> None:
        await invitations.add_key(tx, key("k1"), "o", "o@example.jp")
        await invitations.add_link(tx, link("l1"))
        raise RuntimeError("abort")

    with pytest.raises(RuntimeError):
        await run(transactions, fails)
    assert await invitations.key_by_hash("hash-k1") is None
    assert await invitations.link_by_hash("token-l1") is None
