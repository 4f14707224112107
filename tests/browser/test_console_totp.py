"""2 段階認証の登録 in the browser: a new operator's first login (ID and password only) leads to the enrolment page,
which shows the authenticator app's QR code and key; a wrong code is refused at its field, the app's code
confirms, and the next login asks for the app's code and opens the 託送受付センター."""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pyotp
from playwright.async_api import Page, expect

from kagi_shared.settings import Settings
from tests.browser.test_journeys import assert_page_basics, log_in, no_horizontal_scroll, shot


async def new_operator(settings: Settings) -> tuple[str, str]:
    """An operator account as ``kagi accounts create --role operator`` makes it: no second factor yet."""
    login_id, password = f"op-{uuid.uuid4().hex[:10]}@example.jp", "Kagi-e2e-2026!"
    async with httpx.AsyncClient(base_url=settings.service_url("lifecycle"), timeout=15,
                                 headers={"x-internal-token": settings.security.internal_token}) as lifecycle:
        created = await lifecycle.post("/internal/accounts",
                                       json={"loginId": login_id, "password": password, "roles": ["operator"]})
        assert created.status_code == 201, created.text
    return login_id, password


async def test_a_new_operator_enrols_the_authenticator_app_on_a_phone(phone: Page, settings: Settings) -> None:
    login_id, password = await new_operator(settings)
    await phone.goto("/operator")
    await log_in(phone, login_id, password)
    await expect(phone.get_by_role("heading", name="2 段階認証の登録")).to_be_visible()
    assert phone.url.endswith("/totp")
    await phone.goto("/operator/companies")  # the enrolment token opens nothing else
    await expect(phone.get_by_role("heading", name="2 段階認証の登録")).to_be_visible()

    await phone.get_by_role("button", name="登録を開始する").click()
    await expect(phone.locator("figure.qr svg title")).to_have_text("認証アプリ登録用のQRコード")
    await assert_page_basics(phone)
    await no_horizontal_scroll(phone)
    secret = (await phone.locator("[data-secret]").inner_text()).replace(" ", "")
    await expect(phone.locator("details code")).to_contain_text("otpauth://totp/")
    await shot(phone, "totp-setup")

    wrong = "000000" if "000000" not in {pyotp.TOTP(secret).at(time.time() + d) for d in (-30, 0, 30)} else "111111"
    await phone.get_by_label("ワンタイムパスワード（6 桁）").fill(wrong)
    await phone.get_by_role("button", name="登録する").click()
    await expect(phone.locator("#e-code")).to_have_text("認証アプリに表示されている 6 桁の数字を入力してください。")
    assert (await phone.locator("[data-secret]").inner_text()).replace(" ", "") == secret  # the same key, still

    await phone.get_by_label("ワンタイムパスワード（6 桁）").fill(pyotp.TOTP(secret).now())
    await phone.get_by_role("button", name="登録する").click()
    await expect(phone.get_by_role("heading", name="2 段階認証の登録完了")).to_be_visible()

    await phone.get_by_role("link", name="ログイン画面へ").click()
    await log_in(phone, login_id, password)  # no code: asked for it
    await expect(phone.get_by_role("alert")).to_be_visible()
    await expect(phone).to_have_url(re.compile(r"/login$"))
    # The confirmation used this moment's code, and a code works once: the next one (one step of drift is allowed).
    await log_in(phone, login_id, password, pyotp.TOTP(secret).at(time.time() + 30))
    await phone.get_by_role("link", name="託送受付センター").click()
    await expect(phone.get_by_role("heading", name="受付待ちの申請")).to_be_visible()
