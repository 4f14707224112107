"""Notify against the real database and SMTP sink: SMS, preferences, dead deliveries with reasons, mail headers."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest
from notify_helpers import Sink, event, free_port, harness

from kagi_cli.mailbox import mailbox
from kagi_notify.adapters.sms import read_sms
from kagi_notify.domain.admin_contacts import hash_token
from kagi_notify.domain.deliveries import Delivery
from kagi_shared.events import lifecycle as lev
from kagi_shared.events import notify as ev
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import DEV_SECRETS, Settings


def request(template: str, recipient: str, category: str = "security", channel: str = "mail",
            account_id: str | None = None, **variables: str) -> bytes:
    return event(ev.sealed_request(DEV_SECRETS["notify_key"], ev.Notice(
        template=template, channel=channel, recipient=recipient, category=category,  # type: ignore[arg-type]
        variables=variables, account_id=account_id)), subject=recipient)


CODE = {"code": "ABCD2345EFGH", "expires_at": "2026年11月22日 12時00分まで"}
NOTICE = {"title": "断水のお知らせ", "message": "○○地区で断水が発生しています。"}
WARNING = {"login_id": "lifecycle@example.jp", "last_login": "2026/07/01", "days": "120",
           "login_deadline": "2026/12/28", "contact": "Kagi サポート窓口"}


async def test_sms_goes_to_the_sms_sender_once(settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    h = await harness(settings, await store_factory("notify"), free_port(), tmp_path)
    value = request("sms_verification", "090-1234-5678", channel="sms", **CODE)
    assert [await h.feed("notify.requests", value) for _ in range(2)] == ["handled", "duplicate"]
    await h.drain(3)
    [sms] = read_sms(tmp_path / "sms")
    assert sms.to == "090-1234-5678"
    assert "認証コード: ABCD2345EFGH" in sms.body
    [delivery] = await h.deliveries()
    assert (delivery["status"], delivery["channel"], delivery["variables"]["code"]) == ("sent", "sms", "***")
    assert await h.outbox_types() == ["kagi.notify.notification_delivered"]


@pytest.mark.parametrize(("template", "channel", "recipient", "variables", "reason"), [
    ("no_such_template", "mail", "a@example.jp", CODE, "unknown template 'no_such_template'"),
    ("step_up_code", "mail", "a@example.jp", {"code": "ABCD2345EFGH"}, "missing variables: ['expires_at']"),
    ("step_up_code", "sms", "090-1234-5678", CODE, "template step_up_code is for mail, not sms"),
    ("sms_verification", "sms", "not a number", CODE, "invalid phone number"),
])
async def test_what_can_never_be_sent_is_dead_at_once_with_the_reason(
        settings: Settings, store_factory: Any, tmp_path: Path, template: str, channel: str, recipient: str,
        variables: dict[str, str], reason: str) -> None:
    h = await harness(settings, await store_factory("notify"), free_port(), tmp_path)
    assert await h.feed("notify.requests", request(template, recipient, channel=channel, **variables)) == "handled"
    await h.notify.service.dispatch_due()
    await h.notify.service.dispatch_due()  # nothing left to retry
    [delivery] = await h.deliveries()
    assert delivery["status"] == "dead" and delivery["attempts"] == 1
    assert reason in delivery["last_error"]
    assert [topic for topic, _ in h.dead] == ["notify.requests.dlt"]
    assert b"ABCD2345EFGH" not in h.dead[0][1]  # secrets stay out of the DLT, even of an unknown template
    assert await h.outbox_types() == ["kagi.notify.notification_failed"]


async def test_opted_out_general_notices_are_skipped_mandatory_ones_sent(settings: Settings, store_factory: Any,
                                                                       tmp_path: Path) -> None:
    with Sink(tmp_path) as sink:
        h = await harness(settings, await store_factory("notify"), sink.port, tmp_path)
        account = str(uuid.uuid4())
        address = f"out-{account[:8]}@example.jp"
        # lifecycle announced the account; its owner then switched general notices off.
        created = lev.AccountCreated(account_id=account, login_id=address, email=address, roles=["owner"],
                                     issued_at=datetime.now(UTC))
        assert await h.feed("lifecycle.events", event(created, account)) == "handled"
        await h.notify.preferences.set_general(Caller(account_id=account, login_id=address, email=address), False)

        await h.feed("notify.requests", request("general_notice", address, "general", account_id=account, **NOTICE))
        await h.feed("notify.requests", request("general_notice", address, "general", **NOTICE))  # by address only
        await h.feed("notify.requests", request("step_up_code", address, "security", account_id=account, **CODE))
        other = f"in-{account[:8]}@example.jp"
        await h.feed("notify.requests", request("general_notice", other, "general", **NOTICE))
        await h.drain(5)
    by_status = sorted((d["recipient"], d["template"], d["status"]) for d in await h.deliveries())
    assert by_status == [(other, "general_notice", "sent"),
                         (address, "general_notice", "skipped"),
                         (address, "general_notice", "skipped"),
                         (address, "step_up_code", "sent")]
    brand = settings.brand.name
    assert sorted((m.to, m.subject) for m in mailbox(sink.dir)) == sorted(
        [(address, f"【{brand}】認証コード発行のお知らせ"), (other, f"【{brand}】マイページからのお知らせ")])
    assert sorted(await h.outbox_types()) == ["kagi.notify.notification_delivered"] * 2 + \
        ["kagi.notify.notification_skipped"] * 2

    # The ID is purged: notify forgets the address and the choice.
    purged = lev.AccountPurged(account_id=account, login_id=address, email=address, at=datetime.now(UTC))
    assert await h.feed("lifecycle.events", event(purged, account)) == "handled"
    assert await h.notify.store.db["preferences"].count_documents({"_id": account}) == 0


async def test_real_mails_carry_the_headers_mailers_expect(settings: Settings, store_factory: Any,
                                                          tmp_path: Path) -> None:
    with Sink(tmp_path) as sink:
        h = await harness(settings, await store_factory("notify"), sink.port, tmp_path)
        await h.feed("notify.requests", request("general_notice", "general@example.jp", "general", **NOTICE))
        await h.feed("notify.requests", request("step_up_code", "security@example.jp", "security", **CODE))
        await h.feed("notify.requests", request("inactivity_warning_1", "lifecycle@example.jp", "lifecycle",
                                                **WARNING))
        await h.drain(3)
    mails = {m.to: m.message for m in mailbox(sink.dir)}
    assert len(mails) == 3
    deliveries = {d["recipient"]: d["_id"] for d in await h.deliveries()}
    # The inactivity notices come from the authentication system's address (seed 5-7), the others from
    # the default one; both are settings.
    senders = {"lifecycle@example.jp": settings.smtp.auth_sender}
    for to, message in mails.items():
        sender = senders.get(to, settings.smtp.sender)
        assert message["From"] == sender
        assert message["Message-ID"] == f"<{deliveries[to]}@{sender.rpartition('@')[2]}>"
        assert message["Auto-Submitted"] == "auto-generated"
        sent = message["Date"].datetime
        assert sent.tzinfo is not None and abs(datetime.now(UTC) - sent) < timedelta(minutes=5)
    assert settings.smtp.auth_sender != settings.smtp.sender
    assert mails["general@example.jp"]["List-Unsubscribe"] == \
        f"<{settings.brand.portal_url}/settings/notifications>"
    assert mails["security@example.jp"]["List-Unsubscribe"] is None


async def test_admin_contact_link_expires_then_a_resent_link_confirms(settings: Settings, store_factory: Any,
                                                                      tmp_path: Path) -> None:
    h = await harness(settings, await store_factory("notify"), free_port(), tmp_path)
    contacts = h.notify.admin_contacts
    contact = await contacts.register("Admin@Partner.example.jp", "Partner")
    [stored] = await h.notify.store.db["admin_contacts"].find().to_list()
    assert stored["email"] == "admin@partner.example.jp" and stored["status"] == "provisional"
    [delivery] = await h.deliveries()
    assert delivery["variables"]["confirm_url"] == "***"  # sealed while it waits
    url = opened(h, delivery)["confirm_url"]
    token = url.rsplit("token=", 1)[1]
    assert stored["token_hash"] == hash_token(token, settings.security.code_pepper)
    assert token not in str(stored)  # only the hash is kept

    # Eight days later the link is dead; the operator re-sends and the old token stops working.
    await h.notify.store.db["admin_contacts"].update_one(
        {"_id": contact.id}, {"$set": {"link_expires_at": datetime.now(UTC) - timedelta(days=1)}})
    with pytest.raises(Problem) as expired:
        await contacts.confirm(token)
    assert (expired.value.status, expired.value.code) == (410, "admin_contact.link_expired")
    resent = await contacts.resend(contact.id)
    assert resent.links_sent == 2
    fresh = opened(h, next(d for d in await h.deliveries() if d["_id"] != delivery["_id"]))["confirm_url"]
    with pytest.raises(Problem) as stale:
        await contacts.confirm(token)
    assert stale.value.code == "admin_contact.link_invalid"

    confirmed = await contacts.confirm(fresh.rsplit("token=", 1)[1])
    assert confirmed.status == "active"
    with pytest.raises(Problem) as again:
        await contacts.confirm(fresh.rsplit("token=", 1)[1])
    assert again.value.code == "admin_contact.link_invalid"  # single use
    with pytest.raises(Problem) as active:
        await contacts.resend(contact.id)
    assert active.value.code == "admin_contact.already_active"

    with pytest.raises(Problem) as duplicate:
        await contacts.register("admin@partner.example.jp", None)
    assert duplicate.value.code == "admin_contact.exists"

    _, notified = await contacts.post_site_update("約款の変更", "https://kagi.example.jp/a/1", False, "op")
    _, quiet = await contacts.post_site_update("誤字の修正", "https://kagi.example.jp/a/2", True, "op")
    await contacts.remove(contact.id)
    _, after_removal = await contacts.post_site_update("新着", "https://kagi.example.jp/a/3", False, "op")
    assert (notified, quiet, after_removal) == (1, 0, 0)
    assert [d["template"] for d in await h.deliveries()].count("info_site_update") == 1
    assert await h.notify.store.db["admin_contacts"].count_documents({}) == 0


async def test_operators_find_deliveries_by_address_whatever_its_case(settings: Settings, store_factory: Any,
                                                                     tmp_path: Path) -> None:
    import httpx

    from kagi_notify.entrypoints.api import create_app
    from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, caller_headers

    h = await harness(settings, await store_factory("notify"), free_port(), tmp_path)
    await h.feed("notify.requests", request("step_up_code", "Taro.Yamada@Example.JP", **CODE))
    await h.feed("notify.requests", request("step_up_code", "taro.yamada@example.jp", **CODE))
    await h.feed("notify.requests", request("step_up_code", "hanako@example.jp", **CODE))
    operator = {INTERNAL_TOKEN_HEADER: settings.security.internal_token,
                **caller_headers(Caller(account_id="op-1", login_id="op", roles=("operator",)))}
    # In-process ASGI on this event loop (the database client is bound to it); notify is already started.
    transport = httpx.ASGITransport(app=create_app(settings, h.notify))
    async with httpx.AsyncClient(transport=transport, base_url="http://notify") as client:
        for asked in ("taro.yamada@example.jp", "TARO.YAMADA@EXAMPLE.JP", "Taro.Yamada@example.jp"):
            reply = await client.get("/internal/deliveries", params={"recipient": asked}, headers=operator)
            assert reply.status_code == 200, reply.text
            assert sorted(d["recipient"] for d in reply.json()) == ["Taro.Yamada@Example.JP",
                                                                   "taro.yamada@example.jp"]
        reply = await client.get("/internal/deliveries", params={"recipient": "yamada@example.jp"}, headers=operator)
        assert reply.json() == []  # the whole address, not a part of it
        user = {**operator, **caller_headers(Caller(account_id="u-1", login_id="u", roles=("owner",)))}
        reply = await client.get("/internal/deliveries", params={"recipient": "hanako@example.jp"}, headers=user)
        assert reply.status_code == 403


def opened(h: Any, row: dict[str, Any]) -> dict[str, str]:
    """A delivery row's variables as notify renders them."""
    variables: dict[str, str] = h.notify.service.opened_variables(msgspec.convert({**row, "id": row["_id"]}, Delivery))
    return variables


def forged(kind: str) -> bytes:
    notice = ev.Notice(template="step_up_code", channel="mail", recipient="owner@example.jp", category="security",
                       variables=CODE)
    if kind == "another key":  # someone who may produce to the topic but does not hold the key
        return event(ev.sealed_request("a-key-notify-does-not-hold-0123456789", notice), subject="x")
    sealed = ev.sealed_request(DEV_SECRETS["notify_key"], notice)
    if kind == "redirected":  # a sealed code sent on to another address
        return event(msgspec.structs.replace(sealed, recipient="thief@example.jp"), subject="x")
    data = {"type": "kagi.notify.notification_requested", "template": "step_up_code", "channel": "mail",
            "recipient": "owner@example.jp", "category": "security", "variables": CODE}  # before sealing
    return msgspec.json.encode({**msgspec.json.decode(event(sealed, "x")), "data": data})


@pytest.mark.parametrize("kind", ["another key", "redirected", "in clear"])
async def test_a_request_that_does_not_open_sends_nothing_and_is_dead_lettered_sealed(
        settings: Settings, store_factory: Any, tmp_path: Path, kind: str) -> None:
    h = await harness(settings, await store_factory("notify"), free_port(), tmp_path)
    assert await h.feed("notify.requests", forged(kind)) == "dead"
    await h.drain(2)
    assert await h.deliveries() == []
    assert [topic for topic, _ in h.dead] == ["notify.requests.dlt"]
    if kind != "in clear":
        assert b"ABCD2345EFGH" not in h.dead[0][1]


async def test_a_waiting_delivery_keeps_its_code_sealed_and_the_mail_still_carries_it(
        settings: Settings, store_factory: Any, tmp_path: Path) -> None:
    """Issue 15, finding 11: while a mail waits (an SMTP outage can last hours) its row holds no usable code."""
    sink = Sink(tmp_path)
    h = await harness(settings, await store_factory("notify"), sink.port, tmp_path)
    await h.feed("notify.requests", request("step_up_code", "waiting@example.jp", "security", **CODE))
    [row] = await h.deliveries()
    assert "ABCD2345EFGH" not in repr(row) and row["variables"]["code"] == "***" and row["sealed"]
    assert row["variables"]["expires_at"] == CODE["expires_at"]  # what is not secret stays readable
    # Copied onto another row (say by someone with write access to the database), it does not open.
    other = request("step_up_code", "thief@example.jp", "security", expires_at="x", code="y")
    await h.feed("notify.requests", other)
    await h.notify.store.db["deliveries"].update_one({"recipient": "thief@example.jp"},
                                                     {"$set": {"sealed": row["sealed"]}})
    sink.up()
    try:
        await h.drain(3)
    finally:
        sink.down()
    [mail] = [m for m in mailbox(sink.dir) if m.to == "waiting@example.jp"]
    assert "ABCD2345EFGH" in mail.body
    rows = {d["recipient"]: d for d in await h.deliveries()}
    assert (rows["waiting@example.jp"]["status"], rows["waiting@example.jp"]["sealed"]) == ("sent", "")
    assert rows["thief@example.jp"]["status"] == "dead" and "altered" in rows["thief@example.jp"]["last_error"]
    assert not [m for m in mailbox(sink.dir) if m.to == "thief@example.jp"]
