"""Notifications through the gateway: preferences (全体通知), admin contacts (seed 7-3) and site update notices."""

from __future__ import annotations

import re
import uuid

import httpx

from kagi_cli.mailbox import Mail
from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user, wait_for_mail


def token_in(mail: Mail) -> str:
    match = re.search(r"/admin-contacts/confirm\?token=([A-Za-z0-9_\-]+)", mail.body)
    assert match, mail.body
    return match.group(1)


async def test_a_user_switches_general_notices_off_and_is_told_disaster_notices_stop_too(
        settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    path = "/api/v1/me/notification-preferences"

    shown = await gateway.get(path, headers=user.auth)
    assert shown.status_code == 200, shown.text
    assert shown.json()["receiveGeneralNotices"] is True
    assert "災害発生時の断水情報等の重要なお知らせについても、配信が停止されます" in shown.json()["notice"]
    assert set(shown.json()["alwaysSent"]) == {"usage", "security", "lifecycle", "invitation"}

    off = await gateway.put(path, headers=user.auth, json={"receiveGeneralNotices": False})
    assert off.status_code == 200, off.text
    assert (await gateway.get(path, headers=user.auth)).json()["receiveGeneralNotices"] is False

    typo = await gateway.put(path, headers=user.auth, json={"receiveGeneralNotice": False})
    assert typo.status_code == 400
    assert typo.headers["content-type"].startswith("application/problem+json")
    assert (await gateway.get(path)).status_code == 401


async def test_operator_registers_an_admin_address_which_confirms_and_receives_site_notices(
        settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    owner = await create_user(settings, gateway, ["owner"])
    address = f"admin-{uuid.uuid4().hex[:8]}@partner.example.jp"
    contacts = "/api/v1/operator/admin-contacts"

    refused = await gateway.post(contacts, headers=owner.auth, json={"email": address})
    assert refused.status_code == 403 and refused.json()["code"] == "auth.forbidden"
    bad = await gateway.post(contacts, headers=operator.auth, json={"email": "not an address"})
    assert bad.status_code == 400 and bad.json()["code"] == "admin_contact.email_invalid"

    registered = await gateway.post(contacts, headers=operator.auth, json={"email": address, "company": "協力会社"})
    assert registered.status_code == 201, registered.text
    contact = registered.json()
    assert contact["status"] == "provisional" and contact["linkExpiresAt"]
    [first] = await wait_for_mail(settings, address)
    assert first.subject == f"【{settings.brand.name} 託送情報共有サイト】メールアドレスのご登録依頼"
    assert "認証期限は送信日から7日以内です" in first.body

    # The operator re-sends: a second mail, and only its link works.
    resent = await gateway.post(f"{contacts}/{contact['contactId']}/resend", headers=operator.auth)
    assert resent.status_code == 200, resent.text
    mails = await wait_for_mail(settings, address, count=2)
    old, new = token_in(first), token_in(next(m for m in mails if m.path != first.path))
    stale = await gateway.post("/api/v1/admin-contacts/confirm", json={"token": old})
    assert stale.status_code == 404 and stale.json()["code"] == "admin_contact.link_invalid"

    confirmed = await gateway.post("/api/v1/admin-contacts/confirm", json={"token": new})  # anonymous: the mail link
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "active"
    again = await gateway.post("/api/v1/admin-contacts/confirm", json={"token": new})
    assert again.status_code == 404

    updates = "/api/v1/operator/info-site/updates"
    posted = await gateway.post(updates, headers=operator.auth,
                                json={"title": "託送供給約款の変更について", "url": "https://kagi.example.jp/a/1"})
    assert posted.status_code == 201, posted.text
    assert posted.json()["notified"] >= 1
    quiet = await gateway.post(updates, headers=operator.auth,
                               json={"title": "誤字の修正", "url": "https://kagi.example.jp/a/2", "noNotice": True})
    assert quiet.json()["notified"] == 0
    mails = await wait_for_mail(settings, address, count=3)
    notice = next(m for m in mails if "掲載情報更新" in m.subject)
    assert "件名: 託送供給約款の変更について" in notice.body and "https://kagi.example.jp/a/1" in notice.body

    removed = await gateway.delete(f"{contacts}/{contact['contactId']}", headers=operator.auth)
    assert removed.status_code == 204
    listed = await gateway.get(contacts, headers=operator.auth)
    assert address not in [c["email"] for c in listed.json()]
    gone = await gateway.delete(f"{contacts}/{contact['contactId']}", headers=operator.auth)
    assert gone.status_code == 404 and gone.json()["code"] == "admin_contact.not_found"

    log = await gateway.get("/api/v1/operator/deliveries", headers=operator.auth, params={"recipient": address})
    assert sorted(d["template"] for d in log.json()) == ["admin_contact_confirm"] * 2 + ["info_site_update"]
    assert len([m for m in await wait_for_mail(settings, address, count=3) if "掲載情報更新" in m.subject]) == 1
