"""Self-registration with email verification and re-registration after withdrawal, against the real database."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import parse_qs, urlparse

import msgspec
from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox, refused

from kagi_lifecycle.bootstrap import consumers
from kagi_shared.events import encode, new_envelope
from kagi_shared.events import invite as inv
from kagi_shared.events import lifecycle as ev
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings
from kagi_shared.topics import INVITE_EVENTS


async def link_token(store: Any, to: str) -> str:
    sent = [m for m in await mails(store, to) if m.template == "registration_verify"]
    assert sent, f"no verification mail to {to}"
    return parse_qs(urlparse(sent[-1].variables["verify_url"]).query)["token"][0]


async def test_address_is_verified_once_then_becomes_an_owner_account(settings: Settings,
                                                                      store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    await lc.registrations.request(" New.Customer@Example.jp ", "192.0.2.1")
    token = await link_token(store, "New.Customer@Example.jp")
    assert (await lc.registrations.check(token)).login_id == "new.customer@example.jp"

    weak = await refused(lc.registrations.complete(token, "new.customer-2026"))
    assert weak.code == "password.policy_violation"
    assert [v["rule"] for v in weak.extra["violations"]] == ["password.contains_email_local_part"]
    account = await lc.registrations.complete(token, PASSWORD)
    assert (account.login_id, account.email, account.roles) == \
        ("new.customer@example.jp", "New.Customer@Example.jp", ["owner"])
    assert (await lc.service.login("NEW.customer@example.jp", PASSWORD)).id == account.id
    assert (await refused(lc.registrations.complete(token, PASSWORD))).code == "registration.link_used"
    assert (await refused(lc.registrations.check(token))).code == "registration.link_used"

    events = [e for _, e in await outbox(store)]
    requested = [e for e in events if isinstance(e, ev.RegistrationRequested)]
    completed = [e for e in events if isinstance(e, ev.RegistrationCompleted)]
    assert len(requested) == 1 and [e.account_id for e in completed] == [account.id]
    assert requested[0].registration_id == completed[0].registration_id
    assert "new.customer" not in msgspec.json.encode(requested[0]).decode().lower()  # no address in the event
    assert [e.account_id for e in events if isinstance(e, ev.AccountCreated)] == [account.id]


async def test_bad_links_are_refused_with_their_reason(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    for token in ("", "short", "x" * 43 + "!", "A" * 200):
        assert (await refused(lc.registrations.check(token))).code == "registration.link_invalid"
    assert (await refused(lc.registrations.complete("A" * 43, PASSWORD))).code == "registration.link_invalid"

    await lc.registrations.request("late@example.jp", None)
    late = await link_token(store, "late@example.jp")
    clock.advance(seconds=settings.lifecycle.registration_link_ttl_s)
    assert (await refused(lc.registrations.complete(late, PASSWORD))).code == "registration.link_expired"

    await lc.registrations.request("twice@example.jp", None)
    first = await link_token(store, "twice@example.jp")
    await lc.registrations.request("twice@example.jp", None)
    second = await link_token(store, "twice@example.jp")
    assert (await refused(lc.registrations.check(first))).code == "registration.link_used"  # replaced
    assert (await lc.registrations.check(second)).email == "twice@example.jp"

    bad = await refused(lc.registrations.request("not an address", None))
    assert bad.code == "request.invalid" and [e.field for e in bad.errors] == ["email"]


async def test_two_completions_of_one_link_make_one_account(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    await lc.registrations.request("race@example.jp", None)
    token = await link_token(store, "race@example.jp")
    results = await asyncio.gather(*(lc.registrations.complete(token, PASSWORD) for _ in range(2)),
                                   return_exceptions=True)
    winners = [r for r in results if not isinstance(r, BaseException)]
    losers = [r for r in results if isinstance(r, Problem)]
    assert len(winners) == 1 and [p.code for p in losers] == ["registration.link_used"]
    assert await lc.accounts.collection.count_documents({"login_id": "race@example.jp"}) == 1


async def test_a_registered_address_gets_a_notice_and_the_caller_the_same_answer(settings: Settings,
                                                                                store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    owner = await lc.service.create_account("taken@example.jp", PASSWORD, ["owner"])
    assert await lc.registrations.request("TAKEN@example.jp", "192.0.2.2") is None
    sent = await mails(store, "taken@example.jp")
    assert [(m.template, m.account_id, m.category) for m in sent] == [("registration_exists", owner.id, "security")]
    assert not [e for _, e in await outbox(store) if isinstance(e, ev.RegistrationRequested)]
    assert await store.db["registrations"].count_documents({}) == 0

    # A link issued before the address was taken cannot create a second account.
    await lc.registrations.request("later@example.jp", None)
    token = await link_token(store, "later@example.jp")
    await lc.service.create_account("later@example.jp", PASSWORD, ["owner"])
    assert (await refused(lc.registrations.complete(token, PASSWORD))).code == "registration.already_registered"


async def test_requests_are_limited_per_address_and_per_ip_alike(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    await lc.service.create_account("known@example.jp", PASSWORD, ["owner"])
    per_email = settings.lifecycle.registration_per_email
    for address in ("known@example.jp", "unknown@example.jp"):
        for _ in range(per_email):
            await lc.registrations.request(address, None)
        limited = await refused(lc.registrations.request(address, None))
        assert limited.status == 429 and limited.code == "rate_limited" and "Retry-After" in limited.headers
    for i in range(settings.lifecycle.registration_per_ip):
        await lc.registrations.request(f"ip{i}@example.jp", "198.51.100.7")
    assert (await refused(lc.registrations.request("ip-last@example.jp", "198.51.100.7"))).status == 429
    clock.advance(seconds=settings.lifecycle.registration_rate_window_s + 1)
    await lc.registrations.request("unknown@example.jp", "198.51.100.7")


async def test_withdrawal_frees_the_address_for_a_new_registration(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, _ = await make_lifecycle(settings, store)
    old = await lc.service.create_account("leaving@example.jp", PASSWORD, ["owner"])

    async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
        raise AssertionError(f"dead-lettered: {value!r}")

    consumer = consumers(lc, dead_letter, settings)[INVITE_EVENTS.name]
    envelope = new_envelope(inv.Withdrawn(account_id=old.id, contracts_unlinked=2), source="kagi/invite",
                            subject=old.id)
    assert await consumer.process("invite.events", old.id.encode(), encode(envelope)) == "handled"
    assert await consumer.process("invite.events", old.id.encode(), encode(envelope)) == "duplicate"
    stored = await lc.accounts.get(old.id)
    assert stored is not None and stored.status == "withdrawn" and stored.withdrawn_login_id == "leaving@example.jp"
    assert stored.session_version == old.session_version + 1 and stored.next_stage_at is None
    assert (await refused(lc.service.login("leaving@example.jp", PASSWORD))).code == "auth.invalid_credentials"
    assert [m.template for m in await mails(store, "leaving@example.jp")] == ["withdrawal_completed"]

    # Same address, same password (water FAQ 41).
    await lc.registrations.request("leaving@example.jp", None)
    token = await link_token(store, "leaving@example.jp")
    new = await lc.registrations.complete(token, PASSWORD)
    assert new.id != old.id and (await lc.service.login("leaving@example.jp", PASSWORD)).id == new.id
    assert len([e for _, e in await outbox(store) if isinstance(e, ev.AccountWithdrawn)]) == 1
