"""B2B identities end to end through the gateway with every process running (issue 14, seed 5-1 ⑤, 5-3):
company registration → the admin's two mails → 認証情報登録 → the admin logs in and files a request → batch →
acks → the user's two mails → enrolment → the user logs in; a completed revoke ends the user's sessions and login."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx

from kagi_shared.events import decode, encode, new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.kafka import make_producer, read_topic
from kagi_shared.settings import Settings
from tests.e2e.conftest import User, create_user, enrol_totp, wait_for_mail

PASSWORD = "Enrol#e2e-2026-kagi"  # noqa: S105 - a test account


async def commands_for(settings: Settings, system: str, user_key: str, count: int) -> list[ev.GrantCommanded]:
    """The grant commands for ``user_key`` on ``system`` once the permissions worker's relay published them."""
    found: list[ev.GrantCommanded] = []
    for _ in range(150):
        found = []
        for record in await read_topic(settings, f"permissions.grants.{system.lower()}"):
            _, event = decode(record.value)
            if isinstance(event, ev.GrantCommanded) and event.user_id == user_key:
                found.append(event)
        if len(found) >= count:
            return found
        await asyncio.sleep(0.2)
    raise AssertionError(f"{count} command(s) for {user_key} on {system} expected, got {len(found)}")


async def acknowledge(settings: Settings, commands: list[ev.GrantCommanded]) -> None:
    """What the target systems do: answer each command on permissions.acks."""
    producer = make_producer(settings, f"e2e-targets-{uuid.uuid4().hex[:6]}")
    await producer.start()
    try:
        for command in commands:
            envelope = new_envelope(ev.GrantAcknowledged(
                command_id=command.command_id, request_id=command.request_id, system=command.system,
                user_id=command.user_id, outcome="applied"), source=f"target/{command.system.lower()}",
                subject=command.request_id)
            await producer.send_and_wait("permissions.acks", encode(envelope), key=command.request_id.encode())
    finally:
        await producer.stop()


async def enrolment_secrets(settings: Settings, to: str) -> tuple[str, str]:
    """The URL token and the one-time password from the seed's two mails, which arrive in the seed's order."""
    mails = [m for m in await wait_for_mail(settings, to, count=2) if "認証情報登録" in m.subject]
    guide = next(m for m in mails if "認証情報登録手順のご案内" in m.subject)
    secret = next(m for m in mails if "認証情報登録用ワンタイムパスワード" in m.subject)
    assert mails.index(guide) < mails.index(secret), [m.subject for m in mails]  # 認証情報登録手順のご案内 first
    url = re.search(r"認証情報登録ページ: (\S+)", guide.body)
    otp = re.search(r"ワンタイムパスワード: ([A-Z0-9]{12})", secret.body)
    assert url and otp, (guide.body, secret.body)
    assert otp.group(1) not in guide.body and url.group(1) not in secret.body  # each secret in its own mail
    assert "/registration/" in url.group(1)
    return url.group(1).rsplit("/", 1)[1], otp.group(1)


async def enrol_and_log_in(gateway: httpx.AsyncClient, settings: Settings, login_id: str) -> dict[str, Any]:
    token, otp = await enrolment_secrets(settings, login_id)
    checked = await gateway.post("/api/v1/auth/enrolments/check", json={"token": token})
    assert checked.status_code == 200, checked.text
    assert checked.json()["loginId"] == login_id.lower()
    refused = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": PASSWORD})
    assert refused.status_code == 401  # no password before enrolment
    done = await gateway.post("/api/v1/auth/enrolments/complete", json={
        "token": token, "oneTimePassword": otp, "password": PASSWORD,
        "secretQuestion": "好きな食べ物は？", "secretAnswer": "カレーライス"})
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "active"
    reused = await gateway.post("/api/v1/auth/enrolments/complete",
                                json={"token": token, "oneTimePassword": otp, "password": PASSWORD})
    assert (reused.status_code, reused.json()["code"]) == (409, "enrolment.link_used")
    login = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": PASSWORD})
    if login.status_code == 403:  # a company admin adds the TOTP second factor at the first login
        user = await enrol_totp(gateway, login_id, PASSWORD, login)
        login = await gateway.post("/api/v1/auth/login", json={"loginId": login_id, "password": PASSWORD,
                                                               "totpCode": await user.totp()})
    assert login.status_code == 200, login.text
    body: dict[str, Any] = login.json()
    return body


async def until_complete(gateway: httpx.AsyncClient, auth: dict[str, str], request_id: str) -> dict[str, Any]:
    view: dict[str, Any] = {}
    for _ in range(150):
        view = (await gateway.get(f"/api/v1/permission-requests/{request_id}", headers=auth)).json()
        if view.get("status") == "complete":
            return view
        await asyncio.sleep(0.2)
    raise AssertionError(f"request {request_id} not complete: {view}")


async def company_with_acknowledged_admin(settings: Settings, gateway: httpx.AsyncClient, name: str, admin_id: str,
                                          admin_name: str) -> tuple[User, dict[str, Any]]:
    """An operator registers a gas retailer with ``admin_id`` as its システム窓口責任者; the PMS right that routes at
    once is acknowledged, which enrols the admin (seed ⑤ システム登録作業). The operator and the company."""
    operator = await create_user(settings, gateway, ["operator"])
    company = await gateway.post("/api/v1/operator/companies", headers=operator.auth, json={
        "name": name, "roles": ["gas_retailer"], "primaryAdmin": {"name": admin_name, "email": admin_id}})
    assert company.status_code == 201, company.text
    await acknowledge(settings, await commands_for(settings, "PMS", admin_id.lower(), 1))
    return operator, company.json()


async def test_b2b_identities_end_to_end(settings: Settings, gateway: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    admin_id = f"Sekinin_{tag}@partner-e2e.example.jp"
    operator, company = await company_with_acknowledged_admin(settings, gateway, f"E2E ガス {tag}", admin_id,
                                                              "責任 太郎")
    admin_login = await enrol_and_log_in(gateway, settings, admin_id)
    assert "company_admin" in admin_login["roles"]
    admin = {"Authorization": f"Bearer {admin_login['accessToken']}"}
    assert (await gateway.get("/api/v1/company", headers=admin)).json()["companyId"] == company["companyId"]
    mine = {p["system"]: p["value"] for p in (await gateway.get("/api/v1/me/permissions", headers=admin)).json()[
        "permissions"]}
    assert mine["PMS"] == "yes" and mine["TAXIS"] is None

    # The admin files a new request; the operator accepts; the batch routes; the target systems acknowledge.
    user_id = f"Riyou_{tag}@partner-e2e.example.jp"
    filed = await gateway.post("/api/v1/permission-requests", headers=admin, json={
        "kind": "new", "userId": user_id, "nameKanji": "利用 花子", "nameKana": "リヨウ ハナコ",
        "permissions": {"TAXIS": "1011"}})
    assert filed.status_code == 201, filed.text
    accepted = await gateway.post(f"/api/v1/operator/permission-requests/{filed.json()['requestId']}/accept",
                                  headers=operator.auth)
    assert accepted.status_code == 200, accepted.text
    batch = await gateway.post("/api/v1/operator/permission-batches", headers=operator.auth,
                               json={"batchDate": accepted.json()["batchDate"]})
    assert batch.status_code == 200, batch.text
    key = user_id.lower()
    await acknowledge(settings, [*await commands_for(settings, "TAXIS", key, 1),
                                 *await commands_for(settings, "INFOSITE", key, 1)])
    await until_complete(gateway, admin, filed.json()["requestId"])

    user_login = await enrol_and_log_in(gateway, settings, user_id)
    assert user_login["roles"] == ["system_user"]
    user = {"Authorization": f"Bearer {user_login['accessToken']}"}
    held = (await gateway.get("/api/v1/me/permissions", headers=user)).json()
    granted = {p["system"]: p for p in held["permissions"] if p["value"]}
    assert (held["userId"], sorted(granted)) == (user_id, ["INFOSITE", "TAXIS"])
    assert granted["TAXIS"]["label"] == "1011:更新権限あり"
    assert (await gateway.get("/api/v1/company", headers=user)).status_code == 403  # not an admin

    # A revoke for the user completes: the next call, the login and the refresh token are refused.
    revoke = await gateway.post("/api/v1/permission-requests", headers=admin,
                                json={"kind": "revoke", "userId": user_id})
    assert revoke.status_code == 201, revoke.text
    await acknowledge(settings, [*(await commands_for(settings, "TAXIS", key, 2))[1:],
                                 *(await commands_for(settings, "INFOSITE", key, 2))[1:]])
    await until_complete(gateway, admin, revoke.json()["requestId"])
    ended = None
    for _ in range(100):  # lifecycle's worker applies the change; the gateway's session cache lasts ≤ 5 s
        ended = await gateway.get("/api/v1/me", headers=user)
        if ended.status_code == 401:
            break
        await asyncio.sleep(0.2)
    assert ended is not None and (ended.status_code, ended.json()["code"]) == (401, "auth.session_ended")
    login = await gateway.post("/api/v1/auth/login", json={"loginId": user_id, "password": PASSWORD})
    assert (login.status_code, login.json()["code"]) == (403, "auth.account_disabled")
    refresh = await gateway.post("/api/v1/auth/refresh", json={"refreshToken": user_login["refreshToken"]})
    assert refresh.status_code == 401
    # The admin is untouched.
    assert (await gateway.get("/api/v1/me", headers=admin)).status_code == 200


async def test_enrolment_abuse_through_the_gateway(settings: Settings, gateway: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:8]
    admin_id = f"abuse_{tag}@partner-e2e.example.jp"
    operator, _ = await company_with_acknowledged_admin(settings, gateway, f"E2E 不正 {tag}", admin_id, "試験 次郎")
    token, otp = await enrolment_secrets(settings, admin_id)

    unknown = await gateway.post("/api/v1/auth/enrolments/check", json={"token": "x" * 43})
    assert unknown.status_code == 404 and unknown.headers["content-type"].startswith("application/problem+json")
    assert unknown.json()["code"] == "enrolment.link_invalid" and admin_id.lower() not in unknown.text
    no_token = await gateway.post("/api/v1/auth/enrolments/complete", json={"oneTimePassword": otp,
                                                                           "password": PASSWORD})
    assert no_token.status_code == 400 and "token" in no_token.text
    for left in (4, 3, 2, 1):
        wrong = await gateway.post("/api/v1/auth/enrolments/complete",
                                   json={"token": token, "oneTimePassword": "ABCDEFGHJKMN", "password": PASSWORD})
        assert (wrong.status_code, wrong.json()["code"], wrong.json()["remainingAttempts"]) == \
            (400, "enrolment.otp_invalid", left)
    fifth = await gateway.post("/api/v1/auth/enrolments/complete",
                               json={"token": token, "oneTimePassword": "ABCDEFGHJKMN", "password": PASSWORD})
    assert (fifth.status_code, fifth.json()["code"]) == (410, "enrolment.link_voided")
    late = await gateway.post("/api/v1/auth/enrolments/complete",
                              json={"token": token, "oneTimePassword": otp, "password": PASSWORD})
    assert late.json()["code"] == "enrolment.link_voided"

    # Support re-issues both mails (a new role, given that duty by the seed's troubleshooting table).
    support = await create_user(settings, gateway, ["support"])
    users = await gateway.get("/api/v1/operator/lifecycle/preview", headers=operator.auth,
                              params={"asOf": "2030-01-01"})
    account_id = next(r["accountId"] for rows in users.json().values() if isinstance(rows, list) for r in rows
                      if r["loginId"] == admin_id.lower())
    owner_refused = await gateway.post(f"/api/v1/operator/accounts/{account_id}/enrolment",
                                       headers=(await create_user(settings, gateway, ["owner"])).auth)
    assert owner_refused.status_code == 403
    # Support's other duty: unlock requests (listing here; approval is the operator's route, shared).
    assert (await gateway.get("/api/v1/operator/unlock-requests", headers=support.auth)).status_code == 200
    assert (await gateway.get("/api/v1/operator/companies", headers=support.auth)).status_code == 403
    reissued = await gateway.post(f"/api/v1/operator/accounts/{account_id}/enrolment", headers=support.auth)
    assert reissued.status_code == 201, reissued.text
    mails = [m for m in await wait_for_mail(settings, admin_id, count=4) if "認証情報登録" in m.subject]
    tokens = [t.group(1) for m in mails if (t := re.search(r"/registration/(\S+)", m.body))]
    otps = [o.group(1) for m in mails if (o := re.search(r"ワンタイムパスワード: ([A-Z0-9]{12})", m.body))]
    assert len(tokens) == len(otps) == 2 and token in tokens and otp in otps
    new_token, new_otp = next(t for t in tokens if t != token), next(o for o in otps if o != otp)
    done = await gateway.post("/api/v1/auth/enrolments/complete", json={
        "token": new_token, "oneTimePassword": new_otp, "password": PASSWORD})
    assert done.status_code == 200, done.text
