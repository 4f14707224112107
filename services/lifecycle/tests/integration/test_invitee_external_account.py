"""The one way an account is made from an external ID: an invitee redeeming a key with it. Linked → that account, as
an external login; unknown → a viewer account on the confirmed address with the link, in one transaction; never a
role that needs the second factor; an address that has an account already is refused and leaves no link behind."""

from __future__ import annotations

from typing import Any

from lifecycle_helpers import PASSWORD, make_lifecycle, outbox, refused

from kagi_shared.events import lifecycle as ev
from kagi_shared.settings import Settings


async def test_an_unknown_id_gets_a_linked_viewer_account_and_a_known_one_logs_in(settings: Settings,
                                                                                  store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    made, created = await lc.federation.account_for_invitee("line", "U-1", "Guest@Example.jp", "Guest@Example.jp",
                                                            ["viewer"], "req-1")
    assert created and made.login_id == "guest@example.jp" and made.roles == ["viewer"] and made.status == "active"
    assert [(k.provider, k.subject) for k in await lc.federation.links_of(made.id)] == [("line", "U-1")]
    assert [e.account_id for _, e in await outbox(store) if isinstance(e, ev.AccountCreated)] == [made.id]
    # Its password is random: nobody can log in with one.
    assert (await refused(lc.service.login("guest@example.jp", PASSWORD))).status == 401

    clock.advance(minutes=5)
    again, created = await lc.federation.account_for_invitee("line", "U-1", "other@example.jp", "other@example.jp",
                                                             ["viewer"])
    assert not created and again.id == made.id and again.last_login_at == clock.at  # an external login


async def test_privileged_roles_a_taken_address_and_a_locked_link_are_refused(settings: Settings,
                                                                              store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    for roles in (["operator"], ["owner"], []):
        problem = await refused(lc.federation.account_for_invitee("line", "U-2", "new@example.jp",
                                                                  "new@example.jp", roles))
        assert problem.code == "request.invalid" and problem.errors[0].field == "roles", roles

    holder = await lc.service.create_account("holder@example.jp", PASSWORD, ["owner"])
    taken = await refused(lc.federation.account_for_invitee("line", "U-3", "holder@example.jp", "holder@example.jp",
                                                            ["viewer"]))
    assert (taken.status, taken.code) == (409, "account.exists")
    assert await lc.federation.links.collection.count_documents({}) == 0  # the link went with the account's transaction

    await lc.federation.link(holder.id, "line", "U-4")
    operator = await lc.service.create_account("op-ext@example.jp", PASSWORD, ["operator"])
    await lc.unlocks.operator_lock(holder.id, operator.id)
    locked = await refused(lc.federation.account_for_invitee("line", "U-4", "x@example.jp", "x@example.jp",
                                                             ["viewer"]))
    assert locked.code == "auth.account_locked"  # the login's own refusal: a locked account is not handed out
