"""MyPage in the browser, as the owner of invite-tokyogas-mypage.txt uses it: 追加認証 (a wrong code first, with the
remaining tries), 招待コード発行 (the key shown once, with its JST expiry), the co-user redeeming it in their own
browser, 利用者一覧 (representative change, removal through the confirmation step) and the co-user's view."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from kagi_shared.settings import Settings
from tests.browser.conftest import new_page
from tests.browser.test_journeys import NEW_PASSWORD, assert_page_basics, invitation_url, log_in, no_horizontal_scroll
from tests.e2e.conftest import User, code_in, create_user, wait_for_mail


async def owner_steps_up(page: Page, settings: Settings, owner: User) -> None:
    """From the login page to an open step-up window: a wrong code first, then the mailed one."""
    await page.goto("/mypage")
    await log_in(page, owner.login_id, owner.password)
    await expect(page.get_by_role("heading", name="追加認証")).to_be_visible()
    await assert_page_basics(page)
    await page.get_by_role("button", name="認証コードを発行する").click()
    await expect(page.get_by_role("heading", name="認証コード入力")).to_be_visible()
    await page.get_by_label("認証コード").fill("ZZZZZZZZZZZZ")
    await page.get_by_role("button", name="認証する").click()
    await expect(page.locator(".alert")).to_have_attribute("data-code", "step_up.code_wrong")
    await expect(page.locator("[data-remaining]")).to_have_attribute("data-remaining", "4")
    code = code_in((await wait_for_mail(settings, owner.login_id))[-1])
    await page.get_by_label("認証コード").fill(code)
    await page.get_by_role("button", name="認証する").click()
    await expect(page.get_by_role("heading", name="招待コード発行")).to_be_visible()
    await expect(page.get_by_role("status")).to_have_text("追加認証が完了しました。")


async def test_owner_invites_a_co_user_and_removes_them(page: Page, browser: Browser, system: str,
                                                       settings: Settings, gateway: httpx.AsyncClient,
                                                       request: pytest.FixtureRequest) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    await owner_steps_up(page, settings, owner)
    await page.get_by_role("button", name="招待コードを発行する").click()
    await expect(page.get_by_role("heading", name="招待コード発行完了")).to_be_visible()
    shown = (await page.locator("[data-key]").inner_text()).strip()
    assert re.fullmatch(r"[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}", shown), shown
    await expect(page.get_by_text(re.compile(r"\d{4}年\d{2}月\d{2}日 \d{2}時\d{2}分まで"))).to_be_visible()
    await expect(page.get_by_role("button", name="コピーする")).to_be_visible()  # the site's own script ran
    await page.get_by_role("link", name="招待コード発行へ戻る").click()
    await expect(page.locator("table.list").first).to_contain_text("まで")  # the pending key, listed once
    assert shown not in await page.content()  # the key itself is never shown again

    guest = f"guest-{uuid.uuid4().hex[:8]}@example.jp"
    async for other in new_page(browser, system, request):
        url = await invitation_url(other, settings, guest)
        await other.goto(url)
        await other.get_by_label("認証キー").fill(shown)
        await other.get_by_role("button", name="次へ").click()
        await other.get_by_label("パスワード", exact=True).fill(NEW_PASSWORD)
        await other.get_by_role("button", name="登録する").click()
        await expect(other.get_by_role("heading", name="利用者の登録完了")).to_be_visible()
        await other.get_by_role("link", name="ログイン画面へ").click()
        await log_in(other, guest, NEW_PASSWORD)
        await other.get_by_role("link", name="ご利用中のアカウント").click()
        await expect(other.get_by_text(owner.login_id)).to_be_visible()

        await page.get_by_role("link", name="利用者一覧").click()
        await expect(page.get_by_role("heading", name="利用者一覧")).to_be_visible()
        await assert_page_basics(page)
        row = page.locator("tr", has_text=guest)
        await expect(row).to_contain_text("メールアドレスID")
        await row.get_by_label(re.compile("代表にする")).check()
        await page.get_by_role("button", name="代表メールアドレスを変更する").click()
        await expect(page.get_by_role("status")).to_have_text("代表メールアドレスを変更しました。")
        await expect(page.locator("tr", has_text=guest).get_by_role("radio")).to_be_checked()
        await page.locator("tr", has_text=owner.login_id).get_by_role("radio").check()  # back to the owner
        await page.get_by_role("button", name="代表メールアドレスを変更する").click()

        await page.locator("tr", has_text=guest).get_by_role("link", name="削除").click()
        await expect(page.get_by_role("heading", name="利用者の削除")).to_be_visible()
        await expect(page.locator(".confirm")).to_contain_text(guest)
        await page.get_by_role("link", name="戻る").click()  # changing one's mind removes nobody
        await expect(page.locator("tr", has_text=guest)).to_have_count(1)
        await page.locator("tr", has_text=guest).get_by_role("link", name="削除").click()
        await page.get_by_role("button", name="削除する").click()
        await expect(page.get_by_role("status")).to_have_text("利用者を削除しました。")
        await expect(page.locator("tr", has_text=guest)).to_have_count(0)

        await other.reload()  # the removed co-user no longer uses the owner's account
        await expect(other.get_by_text("ほかの方のアカウントを利用者としてご利用していません。")).to_be_visible()


async def test_owner_revokes_a_pending_key_on_a_phone(phone: Page, settings: Settings,
                                                      gateway: httpx.AsyncClient) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    await owner_steps_up(phone, settings, owner)
    await no_horizontal_scroll(phone)
    await phone.get_by_role("button", name="招待コードを発行する").click()
    await no_horizontal_scroll(phone)
    await phone.get_by_role("link", name="招待コード発行へ戻る").click()
    await phone.get_by_role("link", name="取り消す").click()
    await expect(phone.get_by_role("heading", name="招待コードの取消")).to_be_visible()
    await phone.get_by_role("button", name="取り消す").click()
    await expect(phone.get_by_role("status")).to_have_text("招待コードを取り消しました。")
    await expect(phone.get_by_text("有効な招待コードはありません。")).to_be_visible()
    await expect(phone.get_by_text("取消済み")).to_be_visible()
    await no_horizontal_scroll(phone)
