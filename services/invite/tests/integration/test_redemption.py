"""Redemption as invite's use case, against lifecycle's real internal API (its app in-process over httpx, its own
database): one call makes the account and the co-user; whatever lifecycle refuses, or when it cannot be reached,
the key is given back at once with lifecycle's own answer; a wrong password counts against the key; an external
ID binds the key to its linked account or makes the invitee's account linked to it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import msgspec
from invite_helpers import link_token, open_step_up, refusal

from kagi_invite.adapters.lifecycle import LifecycleAccounts
from kagi_invite.bootstrap import Invite, bootstrap
from kagi_invite.service.redemption import Redemption
from kagi_lifecycle.bootstrap import Lifecycle
from kagi_lifecycle.bootstrap import bootstrap as lifecycle_bootstrap
from kagi_lifecycle.entrypoints.api import create_app
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

PASSWORD = "Kagi-Redeem-2026!x"  # noqa: S105 - a test value that meets the policy
WEAK = "abc"
WRONG = "Wrong-pass-1!"


class World(msgspec.Struct, kw_only=True):
    invite: Invite
    lifecycle: Lifecycle
    owner: Caller


@asynccontextmanager
async def running(settings: Settings, store_factory: Any) -> AsyncIterator[World]:
    """Inside the test's own task: Litestar's lifespan (anyio) must end in the task it began in."""
    lifecycle = lifecycle_bootstrap(settings, await store_factory("lifecycle"))
    app = create_app(settings, lifecycle)
    async with app.lifespan():  # starts lifecycle on this event loop, as its process would
        accounts = LifecycleAccounts(settings, httpx.ASGITransport(app=app))
        invite = bootstrap(settings, await store_factory("invite"), accounts)
        await invite.start()
        made = await lifecycle.service.create_account(f"owner-{_tag()}@example.jp", PASSWORD, ["owner"])
        owner = Caller(account_id=made.id, login_id=made.login_id, email=made.email, roles=("owner",),
                       session_id="s-1")
        try:
            yield World(invite=invite, lifecycle=lifecycle, owner=owner)
        finally:
            await accounts.close()


def _tag() -> str:
    return uuid.uuid4().hex[:8]


async def issued_key(invite: Invite, owner: Caller) -> str:
    await open_step_up(invite, owner)
    return (await invite.invitations.issue_key(owner)).key


async def key_and_link(invite: Invite) -> tuple[str, str]:
    """The status of the test's one key and one link (each test has its own database)."""
    (key,) = await invite.store.db["invitation_keys"].find({}).to_list()
    (link,) = await invite.store.db["confirmation_links"].find({}).to_list()
    return key["status"], link["status"]


async def test_a_new_account_and_the_co_user_in_one_call(settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite, owner = world.invite, world.owner
        key = await issued_key(invite, owner)
        guest = f"guest-{_tag()}@example.jp"
        token = await link_token(invite, guest)
        done = await invite.redemption.redeem(Redemption(token=token, key=key, account="new", password=PASSWORD),
                                              "req-1")
        assert done.new_account and done.co_user.login_id == guest and done.co_user.owner_login_id == owner.login_id
        account = await world.lifecycle.accounts.by_login_id(guest)
        assert account is not None and account.roles == ["viewer"] and done.co_user.account_id == account.id
        assert await key_and_link(invite) == ("redeemed", "used")
        listed = await invite.redemption.user_list(owner)
        assert [(u.login_id, u.owner, u.representative, u.account_type) for u in listed] == [
            (owner.login_id, True, True, "email_id"), (guest, False, False, "email_id")]


async def test_what_lifecycle_refuses_reaches_the_invitee_and_the_key_is_free_again(
        settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite = world.invite
        key = await issued_key(invite, world.owner)
        guest = f"guest-{_tag()}@example.jp"
        token = await link_token(invite, guest)
        weak = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="new", password=WEAK)))
        assert weak.status == 400 and weak.code == "request.invalid" and weak.errors[0].field == "password"
        assert await key_and_link(invite) == ("pending", "active")  # given back at once, not on expiry
        again = await invite.redemption.redeem(Redemption(token=token, key=key, account="new", password=PASSWORD))
        assert again.co_user.login_id == guest


async def test_an_address_with_an_account_already_is_told_so_and_keeps_the_key(
        settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite = world.invite
        key = await issued_key(invite, world.owner)
        guest = f"guest-{_tag()}@example.jp"
        await world.lifecycle.service.create_account(guest, PASSWORD, ["viewer"])
        token = await link_token(invite, guest)
        exists = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="new",
                                                                   password=PASSWORD)))
        assert (exists.status, exists.code, exists.errors[0].field) == (409, "account.exists", "loginId")
        assert await key_and_link(invite) == ("pending", "active")


async def test_a_wrong_password_counts_against_the_key(settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite = world.invite
        key = await issued_key(invite, world.owner)
        member = await world.lifecycle.service.create_account(f"member-{_tag()}@example.jp", PASSWORD, ["owner"])
        token = await link_token(invite, member.login_id)
        missing = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="existing",
                                                                    password=PASSWORD)))
        assert missing.code == "request.invalid" and missing.errors[0].field == "loginId"
        wrong = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="existing",
                                                                  login_id=member.login_id, password=WRONG)))
        assert (wrong.status, wrong.code, wrong.extra) == (401, "invitation.login_failed", {"remainingAttempts": 4})
        assert await key_and_link(invite) == ("pending", "active")
        done = await invite.redemption.redeem(Redemption(token=token, key=key, account="existing",
                                                         login_id=member.login_id, password=PASSWORD))
        assert not done.new_account and done.co_user.account_id == member.id


async def test_lifecycle_out_of_reach_is_a_503_and_the_key_is_free_again(
        settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite = world.invite
        key = await issued_key(invite, world.owner)
        token = await link_token(invite, f"guest-{_tag()}@example.jp")
        away = LifecycleAccounts(settings)
        away.client.base_url = httpx.URL("http://127.0.0.1:9")  # discard: nothing listens
        invite.redemption.accounts = away
        try:
            down = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="new",
                                                                     password=PASSWORD)))
        finally:
            await away.close()
        assert (down.status, down.code, down.headers.get("Retry-After")) == (503, "service.unavailable", "5")
        assert await key_and_link(invite) == ("pending", "active")


async def test_an_external_id_makes_the_invitees_account_or_binds_its_linked_one(
        settings: Settings, store_factory: Any) -> None:
    async with running(settings, store_factory) as world:
        invite, owner = world.invite, world.owner
        guest = f"guest-{_tag()}@example.jp"
        line_user = f"U{_tag()}"
        key = await issued_key(invite, owner)
        token = await link_token(invite, guest)
        unverified = await refusal(invite.redemption.redeem(Redemption(token=token, key=key, account="external",
                                                                       provider="line")))
        assert unverified.code == "request.invalid"
        made = await invite.redemption.redeem(Redemption(token=token, key=key, account="external", provider="line",
                                                         subject=line_user))
        assert made.new_account and made.co_user.login_id == guest and made.co_user.account_type == "external_id"
        links = await world.lifecycle.federation.links_of(made.co_user.account_id)
        assert [(k.provider, k.subject) for k in links] == [("line", line_user)]
        listed = await invite.redemption.user_list(owner)
        assert [(u.login_id, u.account_type, u.external_ids) for u in listed] == [
            (owner.login_id, "email_id", []), (guest, "external_id", ["line"])]

        # Another owner's invitation, redeemed with the same LINE ID (typed on another address): the same account.
        other = await world.lifecycle.service.create_account(f"owner-{_tag()}@example.jp", PASSWORD, ["owner"])
        other_owner = Caller(account_id=other.id, login_id=other.login_id, email=other.email, roles=("owner",),
                             session_id="s-2")
        key2 = await issued_key(invite, other_owner)
        token2 = await link_token(invite, f"elsewhere-{_tag()}@example.jp")
        bound = await invite.redemption.redeem(Redemption(token=token2, key=key2, account="external", provider="line",
                                                          subject=line_user))
        assert not bound.new_account and bound.co_user.account_id == made.co_user.account_id
        account = await world.lifecycle.accounts.get(made.co_user.account_id)
        assert account is not None and account.last_login_at is not None  # an external login, counted by the ladder
