"""認証情報登録 of B2B IDs against the real database: permissions drive the account, the URL and the one-time
password are single use, abuse is refused with the holder's reason, the ladder counts from the issue date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle_helpers import PASSWORD, mails, make_lifecycle, outbox, refused

from kagi_lifecycle.adapters.enrolments import ENROLMENTS
from kagi_lifecycle.bootstrap import Lifecycle, consumers
from kagi_lifecycle.domain.accounts import Account
from kagi_shared import codes
from kagi_shared.events import encode, new_envelope
from kagi_shared.events import lifecycle as ev
from kagi_shared.events import permissions as pev
from kagi_shared.jst import JST
from kagi_shared.settings import Settings, get_settings
from kagi_shared.topics import PERMISSIONS_EVENTS

ISSUED = datetime(2026, 1, 5, 10, 0, tzinfo=JST).astimezone(UTC)



async def dead_letter(topic: str, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]) -> None:
    raise AssertionError(f"dead-lettered: {value!r}")


async def change(lc: Lifecycle, settings: Settings, user_id: str, system: str, before: str | None,
                 after: str | None, held: dict[str, str], reason: str = "request") -> None:
    """Deliver one ``access_changed`` as the permissions service publishes it (through the worker's consumer)."""
    event = pev.AccessChanged(user_id=user_id, company_id="c1", system=system, before=before, after=after,
                              permissions=held, reason=reason)  # type: ignore[arg-type]
    envelope = new_envelope(event, source="kagi/permissions", subject=user_id.lower())
    consumer = consumers(lc, dead_letter, settings)[PERMISSIONS_EVENTS.name]
    assert await consumer.process("permissions.events", user_id.lower().encode(), encode(envelope)) == "handled"
    assert await consumer.process("permissions.events", user_id.lower().encode(), encode(envelope)) == "duplicate"


async def secrets_mailed(store: Any, to: str) -> tuple[str, str]:
    """(URL token, one-time password) from the last two enrolment mails to ``to``, checking their order."""
    sent = [m for m in await mails(store, to) if m.template in ("user_registration_guide", "user_one_time_password")]
    assert [m.template for m in sent[-2:]] == ["user_registration_guide", "user_one_time_password"]
    url = sent[-2].variables["registration_url"]
    assert url.startswith(get_settings().brand.portal_url.rstrip("/") + "/registration/")
    return url.rsplit("/", 1)[1], sent[-1].variables["password"]


async def enrolled(lc: Lifecycle, settings: Settings, store: Any, user: str, system: str, code: str) -> Account:
    """A first grant of ``system`` to ``user``, and the enrolment its mails open, completed."""
    await change(lc, settings, user, system, None, code, {system: code})
    token, otp = await secrets_mailed(store, user)
    return await lc.enrolments.complete(token, otp, PASSWORD)


async def setup(settings: Settings, store_factory: Any, at: datetime = ISSUED) -> tuple[Lifecycle, Any, Any]:
    store = await store_factory("lc")
    lc, clock = await make_lifecycle(settings, store, at)
    return lc, clock, store


async def test_a_first_grant_enrols_the_id_and_enrolment_lets_it_log_in(settings: Settings,
                                                                        store_factory: Any) -> None:
    lc, clock, store = await setup(settings, store_factory)
    await change(lc, settings, "Hanako.Yamada@partner.example.jp", "TAXIS", None, "1011", {"TAXIS": "1011"})
    account = await lc.accounts.by_login_id("hanako.yamada@partner.example.jp")
    assert account is not None
    assert (account.status, account.roles, account.issued_at) == ("pending_enrolment", ["system_user"], ISSUED)
    token, otp = await secrets_mailed(store, "Hanako.Yamada@partner.example.jp")
    assert len(token) == 43 and len(otp) == 12  # 256-bit token; the seed's 12-character one-time password
    # Only hashes at rest: neither secret appears anywhere in the enrolment record.
    [stored] = await store.db[ENROLMENTS].find({"account_id": account.id}).to_list()
    assert token not in str(stored) and otp not in str(stored)
    assert stored["_id"] == codes.hash_token(token, settings.security.code_pepper)
    assert stored["expires_at"] == ISSUED + timedelta(days=14)

    # A second system of the same grant changes nothing (no second pair of mails).
    await change(lc, settings, "hanako.yamada@partner.example.jp", "JOHS", None, "J1010",
                 {"TAXIS": "1011", "JOHS": "J1010"})
    assert len(await mails(store, "Hanako.Yamada@partner.example.jp")) == 2
    assert (await refused(lc.service.login("hanako.yamada@partner.example.jp", PASSWORD))).code == \
        "auth.invalid_credentials"  # no password yet: nothing to guess

    checked = await lc.enrolments.check(token)
    assert (checked.login_id, checked.expires_at) == ("hanako.yamada@partner.example.jp", ISSUED + timedelta(days=14))
    clock.advance(days=3)
    weak = await refused(lc.enrolments.complete(token, otp, "short"))
    assert weak.code == "password.policy_violation"  # the link is not spent by a refused password
    enrolled = await lc.enrolments.complete(token, otp.lower(), PASSWORD, "好きな食べ物は？", "カレー")
    assert (enrolled.status, enrolled.secret_question, enrolled.enrolled_at) == \
        ("active", "好きな食べ物は？", ISSUED + timedelta(days=3))
    assert enrolled.issued_at == ISSUED and enrolled.last_login_at is None  # enrolment is not a login
    assert (await lc.service.login("hanako.yamada@partner.example.jp", PASSWORD)).id == account.id
    assert [e.account_id for _, e in await outbox(store) if isinstance(e, ev.EnrolmentCompleted)] == [account.id]
    issued = [e for _, e in await outbox(store) if isinstance(e, ev.EnrolmentIssued)]
    assert [(e.account_id, e.reason) for e in issued] == [(account.id, "granted")]


async def test_abuse_is_refused_with_the_holders_reason_and_leaks_nothing_to_others(settings: Settings,
                                                                                  store_factory: Any) -> None:
    lc, clock, store = await setup(settings, store_factory)
    await change(lc, settings, "aiko.abe@partner.example.jp", "TAXIS", None, "1010", {"TAXIS": "1010"})
    await change(lc, settings, "bunta.baba@partner.example.jp", "JOHS", None, "J1010", {"JOHS": "J1010"})
    token_a, otp_a = await secrets_mailed(store, "aiko.abe@partner.example.jp")
    token_b, otp_b = await secrets_mailed(store, "bunta.baba@partner.example.jp")

    # Unknown and malformed tokens: one answer, nothing about any ID.
    never = codes.new_code(43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for bad in (never, "short", token_a[:-1] + ("A" if token_a[-1] != "A" else "B")):
        problem = await refused(lc.enrolments.check(bad))
        assert (problem.status, problem.code) == (404, "enrolment.link_invalid")
        assert "@" not in problem.title and not problem.errors and not problem.extra
        assert (await refused(lc.enrolments.complete(bad, otp_a, PASSWORD))).code == "enrolment.link_invalid"

    # Another user's one-time password with my token: wrong password, counted against my URL.
    wrong = await refused(lc.enrolments.complete(token_a, otp_b, PASSWORD))
    assert (wrong.status, wrong.code, wrong.extra["remainingAttempts"]) == (400, "enrolment.otp_invalid", 4)
    for left in (3, 2, 1):
        assert (await refused(lc.enrolments.complete(token_a, "WRONGPASS234", PASSWORD))).extra[
            "remainingAttempts"] == left
    voided = await refused(lc.enrolments.complete(token_a, "WRONGPASS234", PASSWORD))  # the fifth
    assert (voided.status, voided.code) == (410, "enrolment.link_voided")
    # Void for good: the right password no longer helps, and checking says so.
    assert (await refused(lc.enrolments.complete(token_a, otp_a, PASSWORD))).code == "enrolment.link_voided"
    assert (await refused(lc.enrolments.check(token_a))).code == "enrolment.link_voided"
    account_a = await lc.accounts.by_login_id("aiko.abe@partner.example.jp")
    assert account_a is not None and account_a.status == "pending_enrolment"

    # B's URL was not touched by A's failures; used once, then refused as used.
    assert (await lc.enrolments.complete(token_b, otp_b, PASSWORD)).status == "active"
    assert (await refused(lc.enrolments.complete(token_b, otp_b, PASSWORD))).code == "enrolment.link_used"
    assert (await refused(lc.enrolments.check(token_b))).code == "enrolment.link_used"

    # Re-issue (operator or support): new mails; A can enrol with them. The old pair stays dead.
    await lc.enrolments.reissue(account_a.id)
    token_a2, otp_a2 = await secrets_mailed(store, "aiko.abe@partner.example.jp")
    assert token_a2 != token_a and otp_a2 != otp_a
    account_b = await lc.accounts.by_login_id("bunta.baba@partner.example.jp")
    assert account_b is not None
    assert (await refused(lc.enrolments.reissue(account_b.id))).code == "enrolment.not_pending"

    # Expiry: 14 days after the issue, the link's holder hears "expired".
    clock.advance(days=14, seconds=1)
    expired = await refused(lc.enrolments.complete(token_a2, otp_a2, PASSWORD))
    assert (expired.status, expired.code) == (410, "enrolment.link_expired")
    # A re-issue after expiry voids the first re-issue's pair (it was already expired) and works again.
    await lc.enrolments.reissue(account_a.id)
    token_a3, otp_a3 = await secrets_mailed(store, "aiko.abe@partner.example.jp")
    assert (await refused(lc.enrolments.check(token_a2))).code == "enrolment.link_voided"
    assert (await lc.enrolments.complete(token_a3, otp_a3, PASSWORD)).status == "active"


async def test_reissue_voids_the_previous_url_and_password(settings: Settings, store_factory: Any) -> None:
    lc, _, store = await setup(settings, store_factory)
    await change(lc, settings, "c@partner.example.jp", "PMS", None, "yes", {"PMS": "yes"})
    account = await lc.accounts.by_login_id("c@partner.example.jp")
    assert account is not None and account.roles == ["company_admin"]
    old_token, old_otp = await secrets_mailed(store, "c@partner.example.jp")
    await lc.enrolments.reissue(account.id)
    new_token, new_otp = await secrets_mailed(store, "c@partner.example.jp")
    assert (await refused(lc.enrolments.complete(old_token, old_otp, PASSWORD))).code == "enrolment.link_voided"
    # The old one-time password does not open the new URL either.
    assert (await refused(lc.enrolments.complete(new_token, old_otp, PASSWORD))).code == "enrolment.otp_invalid"
    assert (await lc.enrolments.complete(new_token, new_otp, PASSWORD)).status == "active"


async def test_losing_every_permission_disables_at_once_and_a_new_grant_enrols_again(settings: Settings,
                                                                                    store_factory: Any) -> None:
    lc, clock, store = await setup(settings, store_factory)
    user = "d@partner.example.jp"
    account = await enrolled(lc, settings, store, user, "TAXIS", "1010")
    token, _ = await secrets_mailed(store, user)
    await lc.service.login(user, PASSWORD)
    refresh, _, _ = await lc.sessions.open(account)

    # A partial revoke (TAXIS gone, JUJU left) keeps the account; the last one disables it.
    await change(lc, settings, user, "JUJU", None, "yes", {"TAXIS": "1010", "JUJU": "yes"})
    await change(lc, settings, user, "TAXIS", "1010", None, {"JUJU": "yes"})
    assert (await lc.accounts.get(account.id)).status == "active"  # type: ignore[union-attr]
    await change(lc, settings, user, "JUJU", "yes", None, {})
    disabled = await lc.accounts.get(account.id)
    assert disabled is not None and disabled.status == "disabled" and disabled.roles == []
    assert disabled.session_version > account.session_version and disabled.next_stage_at is None
    refusal = await refused(lc.service.login(user, PASSWORD))
    assert (refusal.status, refusal.code) == (403, "auth.account_disabled")
    assert (await refused(lc.sessions.refresh(refresh))).status == 401
    assert [e.reason for _, e in await outbox(store) if isinstance(e, ev.AccountDisabled)] == ["no_permission"]

    # A new grant: a fresh enrolment, the ladder counting from the new issue date, the old password gone.
    clock.advance(days=30)
    await change(lc, settings, user, "JOHS", None, "J1010", {"JOHS": "J1010"})
    again = await lc.accounts.get(account.id)
    assert again is not None and (again.status, again.issued_at, again.last_login_at) == \
        ("pending_enrolment", clock.at, None)
    assert (await refused(lc.service.login(user, PASSWORD))).code == "auth.invalid_credentials"
    token2, otp2 = await secrets_mailed(store, user)
    assert token2 != token
    assert (await lc.enrolments.complete(token2, otp2, PASSWORD)).status == "active"


async def test_company_termination_disables_even_with_revokes_still_open(settings: Settings,
                                                                         store_factory: Any) -> None:
    lc, _, store = await setup(settings, store_factory)
    user = "eiji.kato@partner.example.jp"
    await enrolled(lc, settings, store, user, "JUJU", "yes")
    await change(lc, settings, user, "*", None, None, {}, reason="company_terminated")
    account = await lc.accounts.by_login_id(user)
    assert account is not None and (account.status, account.disabled_reason) == ("disabled", "company_terminated")
    # The JUJU revoke completing later (nothing gained) does not bring the account back.
    await change(lc, settings, user, "TAXIS", "1010", None, {"JUJU": "yes"})
    assert (await lc.accounts.by_login_id(user)).status == "disabled"  # type: ignore[union-attr]


async def test_a_purged_id_granted_again_is_enrolled_afresh(settings: Settings, store_factory: Any) -> None:
    lc, _, store = await setup(settings, store_factory)
    user = "f@partner.example.jp"
    await change(lc, settings, user, "TAXIS", None, "1010", {"TAXIS": "1010"})
    account = await lc.accounts.by_login_id(user)
    assert account is not None

    async def purge(tx: Any) -> None:  # as the sweep's purge stage leaves it
        await lc.accounts.update(tx, account.id, {"status": "purged"})

    await lc.store.transaction(purge)
    await change(lc, settings, user, "TAXIS", "1010", None, {})  # the revoke after the purge: nothing to do
    assert (await lc.accounts.get(account.id)).status == "purged"  # type: ignore[union-attr]
    await change(lc, settings, user, "TAXIS", None, "1011", {"TAXIS": "1011"})
    again = await lc.accounts.get(account.id)
    assert again is not None and again.status == "pending_enrolment"
    assert len([m for m in await mails(store, user) if m.template == "user_registration_guide"]) == 2


async def test_the_ladder_counts_a_never_enrolled_id_from_its_issue_date(settings: Settings,
                                                                        store_factory: Any) -> None:
    """SPEC §4: an ID never logged in is counted from its issue date (2026-01-05 here): warning 1 on day 120
    (2026-05-05), lock on day 180 (2026-07-04), whether or not it enrolled."""
    lc, _, store = await setup(settings, store_factory)
    await change(lc, settings, "g@partner.example.jp", "TAXIS", None, "1010", {"TAXIS": "1010"})
    base = datetime(2026, 1, 5, 7, 0, tzinfo=JST)
    _, before = await lc.sweeps.preview(base + timedelta(days=119))
    assert all(rows == [] for rows in before.values())
    _, warned = await lc.sweeps.preview(base + timedelta(days=120))
    [row] = warned["warning1"]
    assert (row.login_id, row.status, row.base_date, row.stage_date) == \
        ("g@partner.example.jp", "pending_enrolment", "2026-01-05", "2026-05-05")
    _, locked = await lc.sweeps.preview(base + timedelta(days=180))
    [row] = locked["lock"]
    assert (row.base_date, row.stage_date) == ("2026-01-05", "2026-07-04")
    result = await lc.sweeps.sweep(base + timedelta(days=120))
    assert result.applied["warning1"] == 1
    assert [m.template for m in await mails(store, "g@partner.example.jp")][-1] == "inactivity_warning_1"


async def test_staff_accounts_are_enrolled_by_mail(settings: Settings, store_factory: Any) -> None:
    lc, _, store = await setup(settings, store_factory)
    account = await lc.enrolments.create_staff("Support.Desk@kagi.example.jp", "サポート 太郎", "support")
    assert (account.status, account.roles, account.name) == ("pending_enrolment", ["support"], "サポート 太郎")
    token, otp = await secrets_mailed(store, "Support.Desk@kagi.example.jp")
    assert (await lc.enrolments.complete(token, otp, PASSWORD)).status == "active"
    assert (await refused(lc.enrolments.create_staff("support.desk@kagi.example.jp", "x", "support"))).code == \
        "account.exists"
    bad = await refused(lc.enrolments.create_staff("not-an-address", "", "owner"))
    assert sorted(e.field for e in bad.errors) == ["email", "name", "role"]
