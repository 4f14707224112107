"""``make screens``: a picture of every console page at desktop width and at 375 px (a phone), written to
tests/browser/screens/ for a reviewer to look at as the people of the seeds would. Not a test of ``make test``
(the file name keeps it out of collection); run it on its own."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.async_api import Browser, Page, expect

from kagi_shared.settings import Settings
from tests.browser.conftest import PHONE
from tests.browser.test_console_mypage import owner_steps_up
from tests.browser.test_console_permissions import file_new_request
from tests.browser.test_console_totp import new_operator
from tests.browser.test_journeys import log_in
from tests.e2e.conftest import company_with_admin, create_user

SCREENS = Path(__file__).resolve().parent / "screens"
DESKTOP = {"width": 1280, "height": 800}


async def snap(page: Page, name: str) -> None:
    """The page as it is now, at both widths."""
    SCREENS.mkdir(parents=True, exist_ok=True)
    for suffix, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
        await page.set_viewport_size(viewport)
        await page.screenshot(path=str(SCREENS / f"{name}-{suffix}.png"), full_page=True)
    await page.set_viewport_size(DESKTOP)


async def visit(page: Page, path: str, name: str) -> None:
    await page.goto(path)
    await snap(page, name)


async def test_screens(browser: Browser, system: str, settings: Settings, gateway: httpx.AsyncClient) -> None:
    context = await browser.new_context(base_url=system, locale="ja-JP", viewport=DESKTOP, accept_downloads=False)
    context.set_default_timeout(20_000)
    try:
        page = await context.new_page()
        owner = await create_user(settings, gateway, ["owner"])
        await page.goto("/mypage")
        await log_in(page, owner.login_id, owner.password)
        await snap(page, "mypage-step-up")
        await page.get_by_role("button", name="認証コードを発行する").click()
        await page.get_by_label("認証コード").fill("ZZZZZZZZZZZZ")
        await page.get_by_role("button", name="認証する").click()
        await snap(page, "mypage-step-up-wrong-code")
        await context.clear_cookies()
        await owner_steps_up(page, settings, owner)
        await page.get_by_role("button", name="招待コードを発行する").click()
        await expect(page.get_by_role("button", name="コピーする")).to_be_visible()
        await snap(page, "mypage-key-issued")
        await page.get_by_role("link", name="招待コード発行へ戻る").click()
        await snap(page, "mypage-home")
        await page.get_by_role("link", name="取り消す").first.click()
        await snap(page, "mypage-key-revoke-confirm")
        await visit(page, "/mypage/users", "mypage-users")
        await visit(page, "/mypage/memberships", "mypage-memberships")
        await visit(page, "/mypage/locations", "mypage-locations")
        await visit(page, "/mypage/contracts", "mypage-contracts")
        await visit(page, "/viewing", "viewing")
        await visit(page, "/mypage/withdrawal", "mypage-withdrawal-confirm")
        await visit(page, "/account", "account-owner")

        await context.clear_cookies()
        operator, admin = await company_with_admin(settings, gateway)
        company_id = (await gateway.get("/api/v1/company", headers=admin.auth)).json()["companyId"]
        await page.goto("/company")
        await log_in(page, admin.login_id, admin.password, await admin.totp())
        await snap(page, "company-home")
        await page.get_by_role("link", name="利用権限設定（新規）").click()
        await snap(page, "company-request-new")
        await page.get_by_role("button", name="確認画面へ").click()  # nothing entered: the reasons at the fields
        await page.get_by_label("ID（メールアドレス）").fill("taro+x@example.jp")
        await page.get_by_label("氏名（漢字）").fill("託送 花子")
        await page.get_by_label("氏名（カナ）").fill("タクソウ ハナコ")
        await page.get_by_label(re.compile("^TAXIS")).select_option("1011")
        await page.get_by_role("button", name="確認画面へ").click()
        await page.get_by_role("button", name="申請する").click()
        await snap(page, "company-request-refused")
        request_id = await file_new_request(page, f"Screen_{uuid.uuid4().hex[:8]}@example.jp")
        await snap(page, "company-request-view")
        await visit(page, "/company/requests", "company-requests")
        limited = await gateway.patch(f"/api/v1/operator/companies/{company_id}", headers=operator.auth,
                                      json={"jujuMaxUsers": 1})
        assert limited.status_code == 200, limited.text
        filed = await gateway.post("/api/v1/permission-requests", headers=admin.auth, json={
            "kind": "new", "userId": f"Juju_{uuid.uuid4().hex[:8]}@example.jp", "nameKanji": "授受 一郎",
            "nameKana": "ジュジュ イチロウ", "permissions": {"JUJU": "yes"}})
        assert filed.status_code == 201, filed.text
        await visit(page, "/company/requests/new?kind=new", "company-request-juju-full")
        await visit(page, "/company/reviews", "company-reviews")
        await page.get_by_role("button", name="棚卸を開始する").click()
        await snap(page, "company-review")
        await visit(page, "/account", "account-admin")

        await context.clear_cookies()
        await page.goto("/operator")
        await log_in(page, operator.login_id, operator.password, await operator.totp())
        await snap(page, "operator-queue")
        await visit(page, f"/operator/requests/{request_id}", "operator-request")
        await visit(page, f"/operator/requests/{request_id}/cancel", "operator-request-cancel")
        await visit(page, "/operator/requests", "operator-requests")
        await visit(page, "/operator/deliveries", "operator-deliveries")
        await visit(page, "/operator/unlock-requests", "operator-unlock-requests")
        await visit(page, "/operator/companies", "operator-companies")
        await page.get_by_role("button", name="登録する").click()  # nothing entered: the browser's own check
        await visit(page, "/operator/requests/no-such-request", "operator-request-unknown")
        await page.goto("/operator/companies")
        await page.locator("tr", has_text=admin.login_id).get_by_role("link", name="変更・利用終了").click()
        await snap(page, "operator-company")
        successor = f"next-{uuid.uuid4().hex[:6]}@example.jp"
        await page.get_by_label("システム窓口責任者（正）メールアドレス").fill(successor)
        await page.get_by_role("button", name="確認画面へ").click()
        await snap(page, "operator-admin-change-confirm")
        await page.get_by_role("link", name="戻る").click()
        await page.get_by_role("link", name="利用を終了する").click()
        await snap(page, "operator-company-termination-confirm")
        await visit(page, "/operator/admin-contacts", "operator-admin-contacts")
        await page.locator(f'tr[data-candidate="{admin.login_id}"]').get_by_role("button", name="仮登録する").click()
        await snap(page, "operator-admin-contact-registered")
        await page.locator(f'tr[data-contact="{admin.login_id}"]').get_by_role("link", name="削除").click()
        await snap(page, "operator-admin-contact-remove-confirm")
        await visit(page, "/operator/info-site", "operator-info-site")
        await page.get_by_label("掲載情報の件名").fill("託送供給約款の変更について")
        await page.get_by_label("掲載ページのURL").fill("https://kagi.example.jp/info/1")
        await page.get_by_role("button", name="確認画面へ").click()
        await snap(page, "operator-info-site-confirm")
        await visit(page, "/operator/audit?verify=true", "operator-audit")
        await visit(page, "/account", "account-operator")
        await context.clear_cookies()
        login_id, password = await new_operator(settings)
        await page.goto("/operator")
        await log_in(page, login_id, password)
        await snap(page, "totp-start")
        await page.get_by_role("button", name="登録を開始する").click()
        await snap(page, "totp-setup")
        await page.get_by_label("ワンタイムパスワード（6 桁）").fill("12")
        await page.get_by_role("button", name="登録する").click()
        await snap(page, "totp-wrong-code")

        viewer = await create_user(settings, gateway, ["viewer"])
        await context.clear_cookies()
        await page.goto("/operator")
        await log_in(page, viewer.login_id, viewer.password)
        await snap(page, "forbidden-for-a-viewer")
    finally:
        await context.close()
