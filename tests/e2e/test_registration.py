"""Water-portal self-registration end to end: email verification by a mailed link, the account, withdrawal (退会)
and registering again with the same address and password (water FAQ 6, 9, 41)."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx

from kagi_cli.mailbox import Mail
from kagi_shared.settings import Settings
from tests.e2e.conftest import create_user, step_up, wait_for_mail

PASSWORD = "Water-portal-2026!"  # noqa: S105 - a test account
VERIFY = "メールアドレス認証のお知らせ"


def token_in(mail: Mail) -> str:
    match = re.search(r"/register\?token=([\w-]+)", mail.body)
    assert match, mail.body
    return match.group(1)


async def verification(settings: Settings, to: str, count: int) -> str:
    """The token of the ``count``-th verification mail to ``to``."""
    for _ in range(1200):
        mails = [m for m in await wait_for_mail(settings, to) if VERIFY in m.subject]
        if len(mails) >= count:
            return token_in(mails[count - 1])
        await asyncio.sleep(0.1)
    raise AssertionError(f"no verification mail #{count} to {to}")


async def test_register_withdraw_and_register_again_with_the_same_address(settings: Settings,
                                                                         gateway: httpx.AsyncClient) -> None:
    address = f"water-{uuid.uuid4().hex[:10]}@example.jp"
    owner = await create_user(settings, gateway, ["owner"])
    new = await gateway.post("/api/v1/auth/registrations", json={"email": address})
    taken = await gateway.post("/api/v1/auth/registrations", json={"email": owner.login_id.upper()})
    assert new.status_code == taken.status_code == 202
    assert new.json() == taken.json()  # nothing tells whether the address has an account
    [notice] = await wait_for_mail(settings, owner.login_id)
    assert notice.subject == f"【{settings.brand.name}】利用登録のお申し込みについて"
    assert "既にマイページに登録されている" in notice.body and "/register?token=" not in notice.body

    token = await verification(settings, address, 1)
    checked = await gateway.post("/api/v1/auth/registrations/check", json={"token": token})
    assert checked.status_code == 200 and checked.json()["email"] == address
    assert checked.json()["expiresAtText"].endswith("まで")
    weak = await gateway.post("/api/v1/auth/registrations/complete",
                              json={"token": token, "password": address.split("@")[0] + "!A1"})
    assert (weak.status_code, weak.json()["code"]) == (400, "password.policy_violation")
    done = await gateway.post("/api/v1/auth/registrations/complete", json={"token": token, "password": PASSWORD})
    assert done.status_code == 201, done.text
    first_id = done.json()["accountId"]
    assert done.json()["loginId"] == address and done.json()["loginUrl"].endswith("/login")
    reused = await gateway.post("/api/v1/auth/registrations/complete", json={"token": token, "password": PASSWORD})
    assert (reused.status_code, reused.json()["code"]) == (409, "registration.link_used")

    login = await gateway.post("/api/v1/auth/login", json={"loginId": address, "password": PASSWORD})
    assert login.status_code == 200, login.text
    auth = {"Authorization": f"Bearer {login.json()['accessToken']}"}
    me = (await gateway.get("/api/v1/me", headers=auth)).json()
    assert me["accountId"] == first_id and me["roles"] == ["owner"]

    await step_up(settings, gateway, auth, address)
    withdrawn = await gateway.post("/api/v1/me/withdrawal", headers=auth)
    assert withdrawn.status_code == 200, withdrawn.text
    farewell = [m for m in await wait_for_mail(settings, address, 3) if "退会" in m.subject]
    assert farewell and "同じメールアドレス、同じパスワード" in farewell[0].body
    for _ in range(100):  # the gateway trusts its session cache for at most 5 s
        ended = await gateway.get("/api/v1/me", headers=auth)
        if ended.status_code == 401:
            break
        await asyncio.sleep(0.2)
    assert ended.json()["code"] == "auth.session_ended"

    again = await gateway.post("/api/v1/auth/registrations", json={"email": address})
    assert again.status_code == 202
    token = await verification(settings, address, 2)
    redone = await gateway.post("/api/v1/auth/registrations/complete", json={"token": token, "password": PASSWORD})
    assert redone.status_code == 201, redone.text
    assert redone.json()["accountId"] != first_id
    relogin = await gateway.post("/api/v1/auth/login", json={"loginId": address, "password": PASSWORD})
    assert relogin.status_code == 200 and relogin.json()["accessToken"]


async def test_bad_registration_links_and_repeated_requests_are_refused(settings: Settings,
                                                                       gateway: httpx.AsyncClient) -> None:
    for token, status in (("abc", 400), ("A" * 43, 400), ("x" * 42 + "!", 400), ("A" * 300, 400)):
        reply = await gateway.post("/api/v1/auth/registrations/complete", json={"token": token, "password": PASSWORD})
        assert reply.status_code == status and reply.headers["content-type"].startswith("application/problem+json")
        assert reply.json()["code"] in ("registration.link_invalid", "request.invalid")
    checked = await gateway.post("/api/v1/auth/registrations/check", json={"token": "A" * 43})
    assert checked.json()["code"] == "registration.link_invalid"
    malformed = await gateway.post("/api/v1/auth/registrations", json={"email": "not an address"})
    assert (malformed.status_code, malformed.json()["errors"][0]["field"]) == (400, "email")

    address = f"water-many-{uuid.uuid4().hex[:8]}@example.jp"
    replies = [await gateway.post("/api/v1/auth/registrations", json={"email": address})
               for _ in range(settings.lifecycle.registration_per_email + 1)]
    assert [r.status_code for r in replies] == [202] * settings.lifecycle.registration_per_email + [429]
    assert replies[-1].json()["code"] == "rate_limited" and "retry-after" in replies[-1].headers
