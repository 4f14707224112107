"""TOTP second factor and the time-limited lock of privileged accounts against the real database
(issue 15 finding 4)."""

from __future__ import annotations

from typing import Any

import pyotp
from lifecycle_helpers import PASSWORD, Clock, mails, make_lifecycle, refused

from kagi_lifecycle.bootstrap import Lifecycle
from kagi_shared.settings import Settings


def code_at(secret: str, clock: Clock, steps: int = 0) -> str:
    return str(pyotp.TOTP(secret).at(int(clock.at.timestamp()) + 30 * steps))


async def enrolled_operator(lc: Lifecycle, clock: Clock, login_id: str) -> str:
    account = await lc.service.create_account(login_id, PASSWORD, ["operator"])
    enrolment = await lc.totp.setup(account.id)
    assert enrolment.otpauth_uri.startswith("otpauth://totp/Kagi:")
    wrong = await refused(lc.totp.confirm(account.id, "12345"))
    assert wrong.code == "totp.code_wrong"
    await lc.totp.confirm(account.id, code_at(enrolment.secret, clock))
    stored = await lc.accounts.get(account.id)
    assert stored is not None and stored.totp_secret and enrolment.secret not in stored.totp_secret
    assert (await refused(lc.totp.setup(account.id))).code == "totp.already_enrolled"
    return enrolment.secret


async def test_a_privileged_login_needs_a_fresh_totp_code(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    secret = await enrolled_operator(lc, clock, "op-totp@example.jp")
    assert [m.template for m in await mails(store, "op-totp@example.jp")] == ["totp_enrolled"]
    assert (await refused(lc.service.login("op-totp@example.jp", PASSWORD))).code == "auth.totp_required"
    clock.advance(seconds=30)
    code = code_at(secret, clock)
    assert (await lc.service.login("op-totp@example.jp", PASSWORD, totp_code=code)).login_id == "op-totp@example.jp"
    replay = await refused(lc.service.login("op-totp@example.jp", PASSWORD, totp_code=code))
    assert replay.code == "auth.totp_invalid"
    stale = await refused(lc.service.login("op-totp@example.jp", PASSWORD, totp_code=code_at(secret, clock, -3)))
    assert stale.code == "auth.totp_invalid"
    account = await lc.accounts.by_login_id("op-totp@example.jp")
    assert account is not None and account.failed_logins == 2  # wrong codes count as wrong passwords


async def test_a_privileged_lock_ends_by_itself_an_owners_does_not(settings: Settings, store_factory: Any) -> None:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store)
    secret = await enrolled_operator(lc, clock, "op-lock@example.jp")
    await lc.service.create_account("owner-lock@example.jp", PASSWORD, ["owner"])
    for login_id in ("op-lock@example.jp", "owner-lock@example.jp"):
        for _ in range(settings.security.login_lockout_threshold):
            await refused(lc.service.login(login_id, "Wrong-pass-2026!"))
        assert (await refused(lc.service.login(login_id, PASSWORD))).code == "auth.account_locked"
    clock.advance(seconds=settings.security.privileged_lock_s - 5)
    early = await refused(lc.service.login("op-lock@example.jp", PASSWORD, totp_code=code_at(secret, clock)))
    assert early.code == "auth.account_locked"
    clock.advance(seconds=10)
    back = await lc.service.login("op-lock@example.jp", PASSWORD, totp_code=code_at(secret, clock))
    assert back.status == "active" and back.failed_logins == 0
    # The seed's rule for portal users stands: only an operator (or the break-glass CLI) unlocks them.
    assert (await refused(lc.service.login("owner-lock@example.jp", PASSWORD))).code == "auth.account_locked"
