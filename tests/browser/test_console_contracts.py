"""お客さま番号 in the browser (water-mypage-faq.txt): a water customer links two numbers by proving each contract,
switches the main one, removes one after the confirmation step, and 退会 (after its own confirmation) unlinks the
rest."""

from __future__ import annotations

import uuid

import httpx
import msgspec
from playwright.async_api import Page, expect

from kagi_cli.invite import publish_contracts, sample_water_contracts
from kagi_shared.settings import Settings
from tests.browser.test_journeys import assert_page_basics, log_in, no_horizontal_scroll
from tests.e2e.conftest import code_in, create_user, wait_for_mail, water_contract_stored


async def link(page: Page, customer_number: str, billing_number: str, phone: str) -> None:
    await page.get_by_label("お客さま番号", exact=True).fill(customer_number)
    await page.get_by_label("請求番号").fill(billing_number)
    await page.get_by_label("確認する項目", exact=True).select_option(label="電話番号")
    await page.get_by_label("確認する項目の内容").fill(phone)
    await page.get_by_role("button", name="追加する").click()


async def test_water_customer_links_two_numbers_switches_the_main_one_and_withdraws(
        phone: Page, settings: Settings, gateway: httpx.AsyncClient) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    first, second = (msgspec.structs.replace(c, customer_number=f"W{tag}{i}")
                     for i, c in enumerate(sample_water_contracts(2)))
    await publish_contracts(settings, [first, second])
    owner = await create_user(settings, gateway, ["owner"])
    await water_contract_stored(settings, first.customer_number)
    await water_contract_stored(settings, second.customer_number)

    await phone.goto("/account")
    await log_in(phone, owner.login_id, owner.password)
    await phone.get_by_role("link", name="お客さま番号の管理").click()
    await expect(phone.get_by_role("heading", name="お客さま番号の管理")).to_be_visible()
    await assert_page_basics(phone)
    await link(phone, first.customer_number, "12A0000", first.phone)  # a wrong billing number: no hint which
    await expect(phone.locator(".alert")).to_have_attribute("data-code", "claim.not_matched")
    await link(phone, first.customer_number, first.billing_number, first.phone)
    await expect(phone.get_by_role("status")).to_contain_text(f"お客さま番号 {first.customer_number} を追加しました。")
    await link(phone, second.customer_number, second.billing_number, second.phone)
    await expect(phone.get_by_role("status")).to_contain_text(f"お客さま番号 {second.customer_number} を追加しました。")
    await no_horizontal_scroll(phone)

    rows = phone.locator("tr[data-customer]")
    await expect(rows).to_have_count(2)
    await expect(phone.locator(f'tr[data-customer="{first.customer_number}"]').get_by_role("radio")).to_be_checked()
    await phone.locator(f'tr[data-customer="{second.customer_number}"]').get_by_role("radio").check()
    await phone.get_by_role("button", name="メインのお客さま番号を設定する").click()
    await expect(phone.get_by_role("status")).to_have_text(
        f"お客さま番号 {second.customer_number} をメインに設定しました。")
    await expect(phone.locator(f'tr[data-customer="{second.customer_number}"]').get_by_role("radio")).to_be_checked()
    listed = (await gateway.get("/api/v1/me/contracts", headers=owner.auth)).json()
    assert {c["customerNumber"]: c["main"] for c in listed["items"]} == {first.customer_number: False,
                                                                         second.customer_number: True}

    await phone.locator(f'tr[data-customer="{first.customer_number}"]').get_by_role("link", name="削除").click()
    await expect(phone.get_by_role("heading", name="お客さま番号の削除")).to_be_visible()
    await phone.get_by_role("button", name="削除する").click()
    await expect(phone.get_by_role("status")).to_have_text(f"お客さま番号 {first.customer_number} を削除しました。")
    await expect(rows).to_have_count(1)

    await phone.get_by_role("link", name="退会する").click()
    await expect(phone.get_by_role("heading", name="退会")).to_be_visible()
    await phone.get_by_role("link", name="戻る").click()  # changing one's mind withdraws nothing
    await phone.get_by_role("link", name="お客さま番号の管理").click()
    await expect(rows).to_have_count(1)
    await phone.get_by_role("link", name="退会する").click()
    await phone.get_by_role("button", name="退会する").click()
    await expect(phone.get_by_role("heading", name="追加認証")).to_be_visible()  # 退会 needs a fresh step-up
    await phone.get_by_role("button", name="認証コードを発行する").click()
    code = code_in((await wait_for_mail(settings, owner.login_id))[-1])
    await phone.get_by_label("認証コード").fill(code)
    await phone.get_by_role("button", name="認証する").click()
    await phone.goto("/mypage/withdrawal")
    await phone.get_by_role("button", name="退会する").click()
    await expect(phone.get_by_role("heading", name="退会完了")).to_be_visible()
    await expect(phone.get_by_text("解除したお客さま番号 1件")).to_be_visible()
    listed = (await gateway.get("/api/v1/me/contracts", headers=owner.auth)).json()
    assert listed["items"] == []
