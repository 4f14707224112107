"""Step-up against the real database: expiry, concurrent verification, events through the outbox."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from kagi_invite.bootstrap import bootstrap
from kagi_shared.mongo import OUTBOX, Store
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings
from tests.support import opened_request

OWNER = Caller(account_id="acct-1", login_id="owner@example.jp", email="owner@example.jp", roles=("owner",),
               session_id="s-1")


def with_security(settings: Settings, **changes: Any) -> Settings:
    return msgspec.structs.replace(settings, security=msgspec.structs.replace(settings.security, **changes))


async def issued_code(store: Store) -> str:
    rows = await store.db[OUTBOX].find({"topic": "notify.requests"}).sort("seq", -1).limit(1).to_list()
    envelope = msgspec.json.decode(bytes(rows[0]["value"]))
    return str(opened_request(envelope["data"])["variables"]["code"])


async def test_expired_code_is_refused_with_its_own_code(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("invite")
    invite = bootstrap(with_security(settings, step_up_code_ttl_s=1), store)
    await invite.start()
    await invite.step_up.issue(OWNER)
    code = await issued_code(store)
    await asyncio.sleep(1.1)
    with pytest.raises(Problem) as refused:
        await invite.step_up.verify(OWNER, code)
    assert refused.value.code == "step_up.code_expired"
    assert refused.value.status == 410


async def test_code_is_stored_only_as_a_hash_and_mailed_through_the_outbox(settings: Settings,
                                                                          store_factory: Any) -> None:
    store = await store_factory("invite")
    invite = bootstrap(settings, store)
    await invite.start()
    issued = await invite.step_up.issue(OWNER, correlation_id="req-42")
    code = await issued_code(store)
    stored = await store.db["step_up_codes"].find_one({"_id": issued.id})
    assert code not in str(stored)
    rows = await store.db[OUTBOX].find().to_list()
    assert {r["topic"] for r in rows} == {"invite.events", "notify.requests"}
    public = msgspec.json.decode(bytes(next(r for r in rows if r["topic"] == "invite.events")["value"]))
    assert code not in str(public)  # the public event topic never carries the code
    assert public["correlationid"] == "req-42"


async def test_two_concurrent_verifications_succeed_once(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("invite")
    invite = bootstrap(settings, store)
    await invite.start()
    await invite.step_up.issue(OWNER)
    code = await issued_code(store)
    results = await asyncio.gather(*(invite.step_up.verify(OWNER, code) for _ in range(4)), return_exceptions=True)
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert {r.code for r in results if isinstance(r, Problem)} == {"step_up.code_used"}


async def test_missing_email_and_missing_code_are_clear(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("invite")
    invite = bootstrap(settings, store)
    await invite.start()
    with pytest.raises(Problem) as no_code:
        await invite.step_up.verify(OWNER, "ABCDEFGHJKMN")
    assert no_code.value.code == "step_up.no_code"
    with pytest.raises(Problem) as no_email:
        await invite.step_up.issue(msgspec.structs.replace(OWNER, email=""))
    assert no_email.value.code == "step_up.no_email"


async def test_an_attempt_is_counted_before_the_guess_is_judged(settings: Settings, store_factory: Any) -> None:
    """Issue 15 finding 11: concurrent guesses that have taken every attempt (their void not yet written) leave
    no guess for the right code; the count is taken atomically first, then the guess is compared."""
    store = await store_factory("invite")
    invite = bootstrap(settings, store)
    await invite.start()
    issued = await invite.step_up.issue(OWNER)
    code = await issued_code(store)
    await store.db["step_up_codes"].update_one(
        {"_id": issued.id}, {"$set": {"attempts": settings.security.step_up_max_attempts}})
    with pytest.raises(Problem) as refused:
        await invite.step_up.verify(OWNER, code)
    assert refused.value.code == "step_up.code_voided"
    assert await invite.step_up.window(OWNER) is None


async def test_the_window_belongs_to_the_session_that_verified(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("invite")
    invite = bootstrap(settings, store)
    await invite.start()
    await invite.step_up.issue(OWNER)
    await invite.step_up.verify(OWNER, await issued_code(store))
    assert await invite.step_up.window(OWNER) is not None
    other_session = msgspec.structs.replace(OWNER, session_id="s-2")
    assert await invite.step_up.window(other_session) is None
    assert await invite.step_up.window(msgspec.structs.replace(OWNER, session_id=None)) is None
