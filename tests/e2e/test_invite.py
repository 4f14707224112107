"""Invitations end to end: owner step-up by mail → key → invitee's link by mail → redeem → user list → removal."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import msgspec

from kagi_cli.invite import publish_contracts, sample_contracts, sample_water_contracts
from kagi_cli.mailbox import Mail
from kagi_shared.settings import Settings
from tests.e2e.conftest import User, code_in, create_user, step_up, wait_for_mail

PASSWORD = "Guest-pass-2026"  # noqa: S105 - a test account


async def stepped_up_owner(settings: Settings, gateway: httpx.AsyncClient) -> User:
    owner = await create_user(settings, gateway, ["owner"])
    assert (await gateway.post("/api/v1/me/step-up", headers=owner.auth)).status_code == 201
    code = code_in((await wait_for_mail(settings, owner.login_id))[0])
    verified = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": code})
    assert verified.status_code == 200, verified.text
    return owner


def token_in(mail: Mail) -> str:
    match = re.search(r"/invitations/accept\?token=([0-9a-f]+)", mail.body)
    assert match, mail.body
    return match.group(1)


async def confirmation_token(settings: Settings, gateway: httpx.AsyncClient, email: str) -> str:
    requested = await gateway.post("/api/v1/invitations/requests", json={"email": email})
    assert requested.status_code == 202, requested.text
    mails = await wait_for_mail(settings, email)
    confirm = [m for m in mails if "メールアドレス確認" in m.subject]
    assert confirm[-1].subject == "【Kagi マイページ】利用者追加のメールアドレス確認のお知らせ"
    return token_in(confirm[-1])


async def test_owner_invites_a_new_user_sees_them_and_removes_them(settings: Settings,
                                                                    gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    refused = await gateway.post("/api/v1/me/invitations", headers=owner.auth)
    assert (refused.status_code, refused.json()["code"]) == (403, "step_up.required")
    assert (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["code"] == "step_up.required"

    assert (await gateway.post("/api/v1/me/step-up", headers=owner.auth)).status_code == 201
    code = code_in((await wait_for_mail(settings, owner.login_id))[0])
    assert (await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": code})).status_code == 200

    issued = await gateway.post("/api/v1/me/invitations", headers=owner.auth)
    assert issued.status_code == 201, issued.text
    body = issued.json()
    assert re.fullmatch(r"[ABCDEFGHJKMNPQRSTUVWXYZ2-9]{12}", body["key"])
    assert re.fullmatch(r"\d{4}年\d{2}月\d{2}日 \d{2}時\d{2}分まで", body["expiresAtText"])
    assert body["loginUrl"].endswith("/login")

    guest = f"guest-{uuid.uuid4().hex[:8]}@example.jp"
    token = await confirmation_token(settings, gateway, guest)
    checked = await gateway.post("/api/v1/invitations/links/check", json={"token": token})
    assert checked.json()["email"] == guest

    typed = f"{body['key'][:4].lower()}-{body['key'][4:8]} {body['key'][8:].lower()}"
    redeemed = await gateway.post("/api/v1/invitations/redeem",
                                  json={"token": token, "key": typed, "account": "new", "password": PASSWORD})
    assert redeemed.status_code == 201, redeemed.text
    assert redeemed.json()["loginId"] == guest and redeemed.json()["ownerLoginId"] == owner.login_id
    login = await gateway.post("/api/v1/auth/login", json={"loginId": guest, "password": PASSWORD})
    assert login.status_code == 200, login.text
    guest_auth = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    memberships = await gateway.get("/api/v1/me/memberships", headers=guest_auth)
    assert [m["ownerLoginId"] for m in memberships.json()["items"]] == [owner.login_id]

    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [(u["loginId"], u["owner"], u["representative"]) for u in users] == \
        [(owner.login_id, True, True), (guest, False, False)]
    assert users[1]["accountTypeLabel"] == "メールアドレスID" and users[1]["externalIds"] == []
    assert re.fullmatch(r"\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}", users[1]["registeredAtText"])
    keys = (await gateway.get("/api/v1/me/invitations", headers=owner.auth)).json()["items"]
    assert [(k["status"], k["redeemedBy"]) for k in keys] == [("redeemed", guest)]
    assert any(m.subject == "【Kagi マイページ】利用者追加完了のお知らせ"
               for m in await wait_for_mail(settings, owner.login_id, 2))

    reused = await gateway.post("/api/v1/invitations/redeem",
                                json={"token": token, "key": body["key"], "account": "new", "password": PASSWORD})
    assert reused.json()["code"] == "invitation.link_used"

    representative = await gateway.put("/api/v1/me/users/representative", headers=owner.auth,
                                       json={"accountId": users[1]["accountId"]})
    assert representative.status_code == 204
    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [u["representative"] for u in users] == [False, True]

    removed = await gateway.delete(f"/api/v1/me/users/{users[1]['accountId']}", headers=owner.auth)
    assert removed.status_code == 204, removed.text
    assert (await gateway.get("/api/v1/me/memberships", headers=guest_auth)).json()["items"] == []
    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [(u["loginId"], u["representative"]) for u in users] == [(owner.login_id, True)]
    for address, count in ((guest, 3), (owner.login_id, 3)):
        mails = await wait_for_mail(settings, address, count)
        notice = [m for m in mails if m.subject == "【Kagi マイページ】利用者削除のお知らせ"]
        assert len(notice) == 1 and guest in notice[0].body


async def test_existing_account_redeems_after_a_wrong_password(settings: Settings,
                                                               gateway: httpx.AsyncClient) -> None:
    owner = await stepped_up_owner(settings, gateway)
    member = await create_user(settings, gateway, ["viewer"])
    key = (await gateway.post("/api/v1/me/invitations", headers=owner.auth)).json()["key"]
    token = await confirmation_token(settings, gateway, member.login_id)

    wrong = await gateway.post("/api/v1/invitations/redeem", json={
        "token": token, "key": key, "account": "existing", "loginId": member.login_id, "password": "wrong-pass"})
    assert (wrong.status_code, wrong.json()["code"]) == (401, "invitation.login_failed")
    assert wrong.json()["remainingAttempts"] == 4
    own = await gateway.post("/api/v1/invitations/redeem", json={
        "token": token, "key": key, "account": "existing", "loginId": owner.login_id, "password": owner.password})
    assert own.json()["code"] == "invitation.own_key"
    ok = await gateway.post("/api/v1/invitations/redeem", json={
        "token": token, "key": key, "account": "existing", "loginId": member.login_id, "password": member.password})
    assert ok.status_code == 201, ok.text
    assert ok.json()["newAccount"] is False
    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [u["loginId"] for u in users] == [owner.login_id, member.login_id]


async def test_bad_keys_and_other_owners_keys(settings: Settings, gateway: httpx.AsyncClient) -> None:
    owner = await stepped_up_owner(settings, gateway)
    other = await create_user(settings, gateway, ["owner"])
    issued = (await gateway.post("/api/v1/me/invitations", headers=owner.auth)).json()
    token = await confirmation_token(settings, gateway, f"x-{uuid.uuid4().hex[:8]}@example.jp")

    async def redeem(key: str) -> httpx.Response:
        return await gateway.post("/api/v1/invitations/redeem",
                                  json={"token": token, "key": key, "account": "new", "password": PASSWORD})

    for key, status, code in (("", 400, "request.invalid"), ("ABCD", 400, "request.invalid"),
                              ("A" * 80, 400, "request.invalid"), ("ABCD-EFGH-JKM0", 400, "request.invalid")):
        reply = await redeem(key)
        assert (reply.status_code, reply.json()["code"]) == (status, code), key
    mistyped = await redeem("ZZZZZZZZZZZZ" if issued["key"] != "ZZZZZZZZZZZZ" else "YYYYYYYYYYYY")
    assert mistyped.json()["code"] == "invitation.key_wrong"

    not_yours = await gateway.delete(f"/api/v1/me/invitations/{issued['keyId']}", headers=other.auth)
    assert (not_yours.status_code, not_yours.json()["code"]) == (404, "invitation.key_not_found")
    revoked = await gateway.delete(f"/api/v1/me/invitations/{issued['keyId']}", headers=owner.auth)
    assert revoked.json()["status"] == "revoked"
    assert (await redeem(issued["key"])).json()["code"] == "invitation.key_revoked"

    bad_link = await gateway.post("/api/v1/invitations/redeem", json={
        "token": "0" * 48, "key": issued["key"], "account": "new", "password": PASSWORD})
    assert bad_link.json()["code"] == "invitation.link_invalid"
    anonymous = await gateway.post("/api/v1/me/invitations")
    assert anonymous.status_code == 401


async def test_viewer_key_for_one_location_read_only_until_deleted(settings: Settings,
                                                                   gateway: httpx.AsyncClient) -> None:
    owner = await stepped_up_owner(settings, gateway)
    me = await gateway.get("/api/v1/me", headers=owner.auth)
    assert me.status_code == 200, me.text
    await publish_contracts(settings, sample_contracts(me.json()["accountId"], 3))
    for _ in range(300):  # the invite worker stores what arrives on contracts.upserted
        page = (await gateway.get("/api/v1/me/locations", headers=owner.auth)).json()
        if page["total"] == 3:
            break
        await asyncio.sleep(0.1)
    assert page["total"] == 3, page
    first = (await gateway.get("/api/v1/me/locations", headers=owner.auth, params={"perPage": 2})).json()
    second = (await gateway.get("/api/v1/me/locations", headers=owner.auth,
                                params={"perPage": 2, "page": 2})).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 1
    found = (await gateway.get("/api/v1/me/locations", headers=owner.auth, params={"q": "芝浦"})).json()
    [shared] = found["items"]
    spn = shared["supplyPointNumber"]
    other_spn = next(x["locationId"] for x in first["items"] + second["items"] if x["locationId"] != spn)

    bad = await gateway.post("/api/v1/me/locations/12345/viewer-keys", headers=owner.auth)
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "locationId")
    issued = await gateway.post(f"/api/v1/me/locations/{spn}/viewer-keys", headers=owner.auth)
    assert issued.status_code == 201, issued.text
    key = issued.json()["key"]
    assert issued.json()["location"]["name"] == "芝浦倉庫"

    viewer = await create_user(settings, gateway, ["viewer"])
    added = await gateway.post("/api/v1/me/viewing-locations", headers=viewer.auth, json={"key": key.lower()})
    assert added.status_code == 201, added.text
    base = f"/api/v1/me/viewing-locations/{spn}"
    contract = await gateway.get(f"{base}/contract", headers=viewer.auth)
    assert contract.status_code == 200 and contract.json()["contract"]["plan"] == "業務用電力"
    assert len((await gateway.get(f"{base}/statements", headers=viewer.auth)).json()["items"]) == 12
    assert len((await gateway.get(f"{base}/energy", headers=viewer.auth)).json()["items"]) == 7
    write = await gateway.put(f"{base}/contract", headers=viewer.auth, json={"plan": "x"})
    assert (write.status_code, write.json()["code"]) == (403, "viewer.read_only")
    elsewhere = await gateway.get(f"/api/v1/me/viewing-locations/{other_spn}/contract", headers=viewer.auth)
    assert (elsewhere.status_code, elsewhere.json()["code"]) == (404, "location.not_found")
    for odd in ("%1F", "%2E%2E", "%3Fx%3D1", "%25"):  # a control character, a dot segment, '?', '%'
        strange = await gateway.get(f"/api/v1/me/viewing-locations/{odd}/contract", headers=viewer.auth)
        assert strange.headers["content-type"].startswith("application/problem+json"), (odd, strange.text)
        assert strange.status_code in (400, 404), (odd, strange.status_code, strange.text)
    not_owner = await gateway.get(f"/api/v1/me/locations/{spn}/viewers", headers=viewer.auth)
    assert not_owner.status_code == 403

    viewers = (await gateway.get(f"/api/v1/me/locations/{spn}/viewers", headers=owner.auth)).json()["items"]
    assert [v["loginId"] for v in viewers] == [viewer.login_id]
    deleted = await gateway.delete(f"/api/v1/me/locations/{spn}/viewers/{viewers[0]['accountId']}",
                                   headers=owner.auth)
    assert deleted.status_code == 204
    gone = await gateway.get(f"{base}/contract", headers=viewer.auth)
    assert gone.status_code == 404
    assert (await gateway.get("/api/v1/me/viewing-locations", headers=viewer.auth)).json()["items"] == []
    notices = [m.subject for m in await wait_for_mail(settings, owner.login_id, 3)]
    assert "【Kagi マイページ】閲覧者追加のお知らせ" in notices and "【Kagi マイページ】閲覧者削除のお知らせ" in notices
    [removed] = await wait_for_mail(settings, viewer.login_id)
    assert removed.subject == "【Kagi マイページ】閲覧者削除のお知らせ" and "芝浦倉庫" in removed.body


async def sms_code_for(settings: Settings, mobile: str, timeout_s: float = 30) -> str:
    from kagi_notify.adapters.sms import read_sms

    for _ in range(int(timeout_s * 10)):
        for sms in read_sms(settings.var_path / "sms"):
            if sms.to.replace("-", "").endswith(mobile[1:]):
                match = re.search(r"認証コード: (\d{6})", sms.body)
                assert match, sms.body
                return match.group(1)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS to {mobile}")


async def pass_sms_check(gateway: httpx.AsyncClient, settings: Settings, auth: dict[str, str], typed: str,
                         on_file: str | None = None) -> httpx.Response:
    """The registration's SMS check: the code is sent (to the contract's mobile ``on_file`` when the utility has
    one, else to the number typed in), read from the SMS sink and entered; the answer of the verification."""
    sent = await gateway.post("/api/v1/me/registration/sms", headers=auth, json={"mobile": typed})
    assert sent.status_code == 201, sent.text
    code = await sms_code_for(settings, on_file or typed)
    verified = await gateway.post("/api/v1/me/registration/sms/verify", headers=auth, json={"code": code})
    assert verified.status_code == 200, verified.text
    return verified


async def test_water_contract_claims_and_withdrawal(settings: Settings, gateway: httpx.AsyncClient) -> None:
    from kagi_shared.mongo import database_name, make_client

    account = await create_user(settings, gateway, ["owner"])
    tag = uuid.uuid4().hex[:6].upper()
    waters = [msgspec.structs.replace(w, customer_number=f"W{tag}{i}") for i, w in enumerate(sample_water_contracts(2))]
    await publish_contracts(settings, waters)
    client = make_client(settings)
    try:
        stored = client[database_name(settings, "invite")]["water_contracts"]
        for _ in range(300):  # the invite worker stores what arrives on contracts.upserted
            if await stored.count_documents({"_id": {"$in": [w.customer_number for w in waters]}}) == 2:
                break
            await asyncio.sleep(0.1)
    finally:
        await client.close()

    def proof(water: Any, **changes: str) -> dict[str, str]:
        return {"customerNumber": water.customer_number, "billingNumber": water.billing_number,
                "phone": water.phone, **changes}

    wrong = await gateway.post("/api/v1/me/contracts", headers=account.auth,
                               json=proof(waters[0], billingNumber="12A0000"))
    assert (wrong.status_code, wrong.json()["code"]) == (400, "claim.not_matched")
    assert "errors" not in wrong.json()  # no hint which field was wrong
    for water in waters:
        linked = await gateway.post("/api/v1/me/contracts", headers=account.auth, json=proof(water))
        assert linked.status_code == 201, linked.text
    listed = (await gateway.get("/api/v1/me/contracts", headers=account.auth)).json()
    assert [(c["customerNumber"], c["main"]) for c in listed["items"]] == \
        [(waters[0].customer_number, True), (waters[1].customer_number, False)]
    main = await gateway.put("/api/v1/me/contracts/main", headers=account.auth,
                             json={"customerNumber": waters[1].customer_number})
    assert main.status_code == 204
    pending = await gateway.get(f"/api/v1/me/contracts/{waters[1].customer_number}", headers=account.auth)
    assert (pending.status_code, pending.json()["code"]) == (403, "registration.sms_required")
    mobile = f"090{uuid.uuid4().int % 10**8:08d}"
    done = await pass_sms_check(gateway, settings, account.auth, mobile)
    assert done.json()["smsVerified"] is True and done.json()["contracts"] == 2
    detail = await gateway.get(f"/api/v1/me/contracts/{waters[1].customer_number}", headers=account.auth)
    assert detail.json()["main"] is True and "phone" not in detail.json()
    removed = await gateway.delete(f"/api/v1/me/contracts/{waters[0].customer_number}", headers=account.auth)
    assert removed.status_code == 204
    hidden = await gateway.get(f"/api/v1/me/contracts/{waters[0].customer_number}", headers=account.auth)
    assert hidden.status_code == 404

    unverified = await gateway.post("/api/v1/me/withdrawal", headers=account.auth)
    assert (unverified.status_code, unverified.json()["code"]) == (403, "step_up.required")
    await step_up(settings, gateway, account.auth, account.login_id)
    withdrawn = await gateway.post("/api/v1/me/withdrawal", headers=account.auth)
    assert withdrawn.json() == {"contractsUnlinked": 1}
    after = await gateway.get("/api/v1/me/contracts", headers=account.auth)
    # 退会 also ends the account's sessions once lifecycle has the event; before that the list is already empty.
    assert after.json().get("code") == "auth.session_ended" if after.status_code == 401 else \
        after.json()["items"] == []
