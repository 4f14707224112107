"""The first slice end to end: login → step-up code by mail → verify, through the gateway and every process."""

from __future__ import annotations

import asyncio

import httpx

from kagi_shared.settings import Settings
from tests.e2e.conftest import code_in, create_user, step_up, wait_for_mail


async def test_owner_receives_the_code_by_mail_and_verifies_it_once(settings: Settings,
                                                                    gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])

    before = await gateway.get("/api/v1/me/step-up", headers=owner.auth)
    assert before.json()["verified"] is False

    issued = await gateway.post("/api/v1/me/step-up", headers=owner.auth)
    assert issued.status_code == 201, issued.text
    assert issued.json()["sentTo"].endswith("@example.jp")

    [mail] = await wait_for_mail(settings, owner.login_id)
    assert mail.subject == "【Kagi マイページ】認証コード発行のお知らせ"
    assert "追加認証用の認証コードを発行しましたので、お知らせいたします。" in mail.body
    assert "有効期限 " in mail.body and "分まで" in mail.body
    assert mail.message["Auto-Submitted"] == "auto-generated"
    assert mail.message["Message-ID"]
    code = code_in(mail)

    # People copy codes with spaces, hyphens and in lower case.
    typed = f"{code[:4].lower()}-{code[4:8]} {code[8:]}"
    verified = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": typed})
    assert verified.status_code == 200, verified.text
    assert verified.json()["verified"] is True
    assert (await gateway.get("/api/v1/me/step-up", headers=owner.auth)).json()["verified"] is True

    reused = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": code})
    assert reused.status_code == 409
    assert reused.headers["content-type"].startswith("application/problem+json")
    assert reused.json()["code"] == "step_up.code_used"
    assert reused.json()["instance"] == "/api/v1/me/step-up/verify"


async def test_wrong_codes_count_down_then_void_the_code(settings: Settings, gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    assert (await gateway.post("/api/v1/me/step-up", headers=owner.auth)).status_code == 201
    code = code_in((await wait_for_mail(settings, owner.login_id))[0])
    wrong = "ZZZZZZZZZZZZ" if code != "ZZZZZZZZZZZZ" else "YYYYYYYYYYYY"

    remaining = []
    for _ in range(4):
        reply = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": wrong})
        assert reply.status_code == 400
        assert reply.json()["code"] == "step_up.code_wrong"
        remaining.append(reply.json()["remainingAttempts"])
    assert remaining == [4, 3, 2, 1]

    fifth = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": wrong})
    assert fifth.json()["code"] == "step_up.code_voided"
    right_too_late = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": code})
    assert right_too_late.json()["code"] == "step_up.code_voided"


async def test_reissue_replaces_the_previous_code(settings: Settings, gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    await gateway.post("/api/v1/me/step-up", headers=owner.auth)
    first = code_in((await wait_for_mail(settings, owner.login_id, 1))[0])
    await gateway.post("/api/v1/me/step-up", headers=owner.auth)
    mails = await wait_for_mail(settings, owner.login_id, 2)
    second = next(code_in(m) for m in mails if code_in(m) != first)

    old = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": first})
    assert old.json()["code"] == "step_up.code_wrong"  # only the newest code is checked
    new = await gateway.post("/api/v1/me/step-up/verify", headers=owner.auth, json={"code": second})
    assert new.status_code == 200


async def test_step_up_needs_an_owner_token(settings: Settings, gateway: httpx.AsyncClient) -> None:
    anonymous = await gateway.post("/api/v1/me/step-up")
    assert anonymous.status_code == 401
    assert anonymous.json()["code"] == "auth.required"
    forged = await gateway.post("/api/v1/me/step-up", headers={"Authorization": "Bearer not.a.token"})
    assert forged.json()["code"] == "auth.token_invalid"
    operator = await create_user(settings, gateway, ["operator"])
    refused = await gateway.post("/api/v1/me/step-up", headers=operator.auth)
    assert refused.status_code == 403
    assert refused.json()["code"] == "auth.forbidden"


async def test_login_refusals_do_not_reveal_whether_an_id_exists(settings: Settings,
                                                                 gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    unknown = await gateway.post("/api/v1/auth/login", json={"loginId": "nobody@example.jp", "password": "x"})
    wrong = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": "x"})
    assert unknown.status_code == wrong.status_code == 401
    strip = ("instance", "requestId")
    assert {k: v for k, v in unknown.json().items() if k not in strip} == \
        {k: v for k, v in wrong.json().items() if k not in strip}

    me = await gateway.get("/api/v1/me", headers=user.auth)
    assert me.json()["loginId"] == user.login_id
    assert me.json()["lastLoginAt"] is not None


async def test_five_wrong_passwords_lock_the_account(settings: Settings, gateway: httpx.AsyncClient) -> None:
    user = await create_user(settings, gateway, ["owner"])
    for _ in range(5):
        reply = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": "wrong-pass"})
        assert reply.json()["code"] == "auth.invalid_credentials"
    locked = await gateway.post("/api/v1/auth/login", json={"loginId": user.login_id, "password": user.password})
    assert locked.status_code == 403
    assert locked.json()["code"] == "auth.account_locked"


async def test_bad_bodies_get_problem_json_naming_the_field(system: str, gateway: httpx.AsyncClient) -> None:
    unknown_field = await gateway.post("/api/v1/auth/login", json={"loginId": "a@b.jp", "password": "x", "x": 1})
    assert unknown_field.status_code == 400
    assert unknown_field.json()["errors"] == [{"field": "x", "reason": "未定義の項目です (unknown field)"}]
    missing = await gateway.post("/api/v1/auth/login", json={"loginId": "a@b.jp"})
    assert missing.status_code == 400
    assert missing.json()["code"] == "request.invalid"
    not_json = await gateway.post("/api/v1/auth/login", content=b"{nope", headers={"content-type": "application/json"})
    assert not_json.status_code == 400
    too_big = await gateway.post("/api/v1/auth/login", content=b"{" + b" " * 200_000 + b"}",
                                 headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    assert too_big.json()["code"] == "request.too_large"


async def test_health_ready_and_openapi(system: str, gateway: httpx.AsyncClient) -> None:
    assert (await gateway.get("/health")).json() == {"status": "ok"}
    # Readiness may flap while a loaded machine answers a probe late: wait for it, as a probe would.
    for _ in range(60):
        ready = await gateway.get("/ready")
        if ready.status_code == 200:
            break
        assert ready.headers["content-type"].startswith("application/problem+json")
        await asyncio.sleep(1)
    assert ready.status_code == 200, ready.text
    assert set(ready.json()["services"]) == {"lifecycle", "invite", "permissions", "notify", "audit"}
    schema = (await gateway.get("/schema/openapi.json")).json()
    assert "/api/v1/me/step-up/verify" in schema["paths"]
    reply = await gateway.get("/health", headers={"X-Request-ID": "abcdef12-3456"})
    assert reply.headers["x-request-id"] == "abcdef12-3456"
    await asyncio.sleep(0)


async def test_a_step_up_belongs_to_its_session_and_ends_with_it(settings: Settings,
                                                                 gateway: httpx.AsyncClient) -> None:
    """Issue 15 finding 10: session A verifies and logs out; a new session B had a window without any code."""
    owner = await create_user(settings, gateway, ["owner"])
    await step_up(settings, gateway, owner.auth, owner.login_id)
    assert (await gateway.get("/api/v1/me/users", headers=owner.auth)).status_code == 200

    other = await gateway.post("/api/v1/auth/login", json={"loginId": owner.login_id, "password": owner.password})
    session_b = {"Authorization": f"Bearer {other.json()['accessToken']}"}
    assert (await gateway.get("/api/v1/me/step-up", headers=session_b)).json()["verified"] is False
    refused = await gateway.get("/api/v1/me/users", headers=session_b)
    assert (refused.status_code, refused.json()["code"]) == (403, "step_up.required")

    assert (await gateway.post("/api/v1/auth/logout", headers=owner.auth, json={})).status_code == 204
    again = await gateway.post("/api/v1/auth/login", json={"loginId": owner.login_id, "password": owner.password})
    session_c = {"Authorization": f"Bearer {again.json()['accessToken']}"}
    assert (await gateway.get("/api/v1/me/step-up", headers=session_c)).json()["verified"] is False
    keys = await gateway.post("/api/v1/me/invitations", headers=session_c, json={})
    assert (keys.status_code, keys.json()["code"]) == (403, "step_up.required")
