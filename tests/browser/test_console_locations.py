"""使用場所 and 閲覧者 in the browser (authkey-tepco-business.txt): the owner finds a location by name among pages of
them, issues its viewer key (shown once), a second account adds it and reads 契約内容 / ご利用明細 / エネみえ only for
that location, and the owner deletes the viewer (after the confirmation step), which ends the viewing at once."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from kagi_cli.invite import publish_contracts, sample_contracts
from kagi_shared.settings import Settings
from tests.browser.conftest import new_page
from tests.browser.test_console_mypage import owner_steps_up
from tests.browser.test_journeys import assert_page_basics, log_in, no_horizontal_scroll
from tests.e2e.conftest import create_user


async def test_owner_issues_a_viewer_key_that_a_second_account_redeems_and_then_loses(
        page: Page, browser: Browser, system: str, settings: Settings, gateway: httpx.AsyncClient,
        request: pytest.FixtureRequest) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    me = (await gateway.get("/api/v1/me", headers=owner.auth)).json()
    await publish_contracts(settings, sample_contracts(me["accountId"], 12))
    for _ in range(300):  # the invite worker stores what arrives on contracts.upserted
        if (await gateway.get("/api/v1/me/locations", headers=owner.auth)).json()["total"] == 12:
            break
        await asyncio.sleep(0.1)
    await owner_steps_up(page, settings, owner)

    await page.goto("/account")
    await page.get_by_role("link", name="使用場所一覧").click()
    await expect(page.get_by_role("heading", name="使用場所一覧")).to_be_visible()
    await assert_page_basics(page)
    await expect(page.get_by_text("12件中 1〜10件を表示")).to_be_visible()
    await page.get_by_role("link", name="次へ").click()
    await expect(page.get_by_text("12件中 11〜12件を表示")).to_be_visible()
    await page.get_by_label("使用場所名・供給地点特定番号・お客さま番号").fill("芝浦")
    await page.get_by_role("button", name="検索する").click()
    row = page.locator("tr[data-location]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("芝浦倉庫")
    await row.get_by_role("button", name="閲覧者認証キー発行").click()
    await expect(page.get_by_role("heading", name="閲覧者認証キー発行完了")).to_be_visible()
    key = (await page.locator("[data-key]").inner_text()).strip()

    async for other in new_page(browser, system, request):
        viewer = await create_user(settings, gateway, ["viewer"])
        await other.goto("/viewing")
        await log_in(other, viewer.login_id, viewer.password)
        await expect(other.get_by_text("閲覧できる使用場所はありません。")).to_be_visible()
        await other.get_by_label("閲覧者認証キー").fill("WRONG-KEY-000")
        await other.get_by_role("button", name="追加する").click()
        await expect(other.locator(".alert")).to_be_visible()
        await other.get_by_label("閲覧者認証キー").fill(key.lower())
        await other.get_by_role("button", name="追加する").click()
        await expect(other.get_by_role("status")).to_have_text("芝浦倉庫 を閲覧場所に追加しました。")
        await other.get_by_role("link", name="契約内容").click()
        await expect(other.get_by_role("cell", name="業務用電力")).to_be_visible()
        await other.get_by_role("link", name="ご利用明細").click()
        await expect(other.locator("tbody tr")).to_have_count(12)
        await other.get_by_role("link", name="エネみえ").click()
        await expect(other.locator("tbody tr")).to_have_count(7)
        await assert_page_basics(other)

        await page.get_by_role("link", name="使用場所一覧へ戻る").click()
        await page.get_by_label("使用場所名・供給地点特定番号・お客さま番号").fill("芝浦")
        await page.get_by_role("button", name="検索する").click()
        await page.get_by_role("link", name="閲覧者表示").click()
        await expect(page.get_by_role("cell", name=viewer.login_id)).to_be_visible()
        await page.get_by_role("link", name="削除").click()
        await expect(page.get_by_role("heading", name="閲覧者の削除")).to_be_visible()
        await page.get_by_role("button", name="削除する").click()
        await expect(page.get_by_role("status")).to_have_text("閲覧者を削除しました。")
        await expect(page.get_by_text("この使用場所の閲覧者はいません。")).to_be_visible()

        await other.goto("/viewing")
        await expect(other.get_by_text("閲覧できる使用場所はありません。")).to_be_visible()
        await other.set_viewport_size({"width": 375, "height": 812})
        await no_horizontal_scroll(other)
