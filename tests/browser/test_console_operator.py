"""託送受付センター's company and 託送情報共有サイト screens in the browser (consignment-system-guide.txt 3-2 and 7-3):
the operator changes a company's システム窓口責任者 through a confirmation step, changes its JUJU limit and ends its
use; registers the admins' contact addresses from the companies' admins, the admin confirms from the mail, the
operator posts a site update (with and without its notice mail) and removes an address after confirming."""

from __future__ import annotations

import re
import uuid

import httpx
from playwright.async_api import Page, expect

from kagi_shared.settings import Settings
from tests.browser.test_journeys import assert_page_basics, link_in, log_in, no_horizontal_scroll, shot
from tests.e2e.conftest import company_with_admin, wait_for_mail
from tests.e2e.test_b2b_identities import acknowledge, commands_for


async def open_company(page: Page, admin: str) -> None:
    """The company whose システム窓口責任者 is ``admin`` (the journeys' companies share a name)."""
    await page.get_by_role("link", name="事業者", exact=True).click()
    await page.locator("tr", has_text=admin).get_by_role("link", name="変更・利用終了").click()


async def test_operator_changes_the_admin_and_the_juju_limit_then_ends_the_company(
        page: Page, settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    successor = f"successor-{uuid.uuid4().hex[:8]}@partner.example.jp"
    await page.goto("/operator")
    await log_in(page, operator.login_id, operator.password, await operator.totp())
    await open_company(page, admin.login_id)
    await expect(page.get_by_role("heading", name="パートナーガス株式会社")).to_be_visible()
    await assert_page_basics(page)
    company_url = page.url
    await expect(page.locator('[data-admin="primary"]')).to_have_text(f"託送 太郎（{admin.login_id}）")

    # Nothing changed: refused at once, no confirmation asked.
    await page.get_by_role("button", name="確認画面へ").click()
    await expect(page.get_by_role("alert")).to_have_text("変更する項目を指定してください。")

    await page.get_by_label("システム窓口責任者（正）氏名").fill("後任 次郎")
    await page.get_by_label("システム窓口責任者（正）メールアドレス").fill(successor)
    await page.get_by_role("button", name="確認画面へ").click()
    await expect(page.get_by_role("heading", name="システム窓口責任者の変更")).to_be_visible()
    question = page.locator(".confirm")
    await expect(question).to_contain_text(f"（正）託送 太郎（{admin.login_id}） → 後任 次郎（{successor}）")
    await expect(question).to_contain_text("利用者の利用権限は変わりません")
    await shot(page, "operator-admin-change-confirm")
    await page.get_by_role("link", name="戻る").click()  # going back changes nothing
    await expect(page.locator('[data-admin="primary"]')).to_contain_text(admin.login_id)

    await page.get_by_label("システム窓口責任者（正）氏名").fill("後任 次郎")
    await page.get_by_label("システム窓口責任者（正）メールアドレス").fill(successor)
    await page.get_by_role("button", name="確認画面へ").click()
    await page.get_by_role("button", name="変更する").click()
    await expect(page.get_by_role("status")).to_have_text("パートナーガス株式会社 のシステム窓口責任者を変更しました。")
    await expect(page.locator('[data-admin="primary"]')).to_have_text(f"後任 次郎（{successor}）")
    # The successor gets an ID: the permission-management right goes to PMS, whose acknowledgement sends the
    # enrolment mails of seed 3-1 【注3】 to the new address.
    await acknowledge(settings, await commands_for(settings, "PMS", successor.lower(), 1))
    assert any("認証情報登録" in m.subject for m in await wait_for_mail(settings, successor))
    leaving = await gateway.get("/api/v1/company", headers=admin.auth)
    assert leaving.status_code in (403, 404), leaving.text  # the old admin manages this company no more

    # This company's requests only: the admins' own (PMS) ones, the successor's among them.
    await page.get_by_role("link", name="この事業者の申請").click()
    rows = page.locator("tr[data-request]")
    await expect(rows.filter(has_text=successor.lower())).to_have_count(1)
    assert await rows.count() <= 3, await rows.all_inner_texts()
    await page.goto(company_url)

    await page.get_by_label("JUJU 利用者の上限（空欄: 変更しない）").fill("2")
    await page.get_by_role("button", name="変更する").click()
    await expect(page.get_by_role("status")).to_have_text("パートナーガス株式会社 の登録内容を変更しました。")
    await expect(page.get_by_role("row", name=re.compile("JUJU 利用者の上限"))).to_contain_text("2名")

    await page.get_by_role("link", name="利用を終了する").click()
    await expect(page.get_by_role("heading", name="利用終了")).to_be_visible()
    await expect(page.locator(".confirm")).to_contain_text("元に戻すことはできません")
    await page.get_by_role("button", name="利用を終了する").click()
    await expect(page.get_by_role("status")).to_have_text(  # the successor, who holds PMS now
        "パートナーガス株式会社 の利用を終了しました（利用権限を抹消した利用者 1 名）。")
    await expect(page.locator(".status")).to_contain_text("利用終了")
    await expect(page.get_by_role("button", name="確認画面へ")).to_have_count(0)  # nothing left to change
    assert page.url == company_url


async def test_admin_addresses_and_site_updates_with_and_without_the_notice(
        page: Page, phone: Page, settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    await page.goto("/operator/admin-contacts")
    await log_in(page, operator.login_id, operator.password, await operator.totp())
    await expect(page.get_by_role("heading", name="通知先アドレス")).to_be_visible()
    await assert_page_basics(page)

    # 仮登録 from the companies' admins not registered yet (seed 7-3 ①); the mail goes out (②).
    await page.locator(f'tr[data-candidate="{admin.login_id}"]').get_by_role("button", name="仮登録する").click()
    await expect(page.get_by_role("status")).to_have_text(
        f"{admin.login_id} を仮登録し、本登録依頼メールを送信しました。")
    row = page.locator(f'tr[data-contact="{admin.login_id}"]')
    await expect(row.locator(".status")).to_have_text("仮登録")
    await expect(row.locator('td[data-label="事業者"]')).to_have_text("パートナーガス株式会社")
    await expect(page.locator(f'tr[data-candidate="{admin.login_id}"]')).to_have_count(0)

    # A wrong address is refused at its field and nothing is registered.
    await page.get_by_label("メールアドレス").fill("someone@localhost")  # the browser's check lets it through
    await page.get_by_role("button", name="仮登録する").last.click()
    await expect(page.get_by_role("alert")).to_have_text("メールアドレスの形式が正しくありません。")
    await expect(page.locator("#e-email")).to_be_visible()
    await expect(page.locator('tr[data-contact="someone@localhost"]')).to_have_count(0)

    # 本登録 (④) from the mailed link.
    mail = (await wait_for_mail(settings, admin.login_id, subject="ご登録依頼"))[0]
    url = link_in(mail, "/admin-contacts/confirm?token=", settings)
    await phone.goto(url)
    await phone.get_by_role("button", name="本登録する").click()
    await expect(phone.get_by_role("heading", name="本登録完了")).to_be_visible()
    await page.reload()
    await expect(row.locator(".status")).to_contain_text("本登録")
    await shot(page, "operator-admin-contacts")

    # 掲載情報の更新 with its notice: the confirmation says who is mailed.
    await page.get_by_role("link", name="掲載情報の更新").click()
    await assert_page_basics(page)
    title = f"託送供給約款の変更について {uuid.uuid4().hex[:4]}"
    await page.get_by_label("掲載情報の件名").fill(title)
    await page.get_by_label("掲載ページのURL").fill("https://kagi.example.jp/info/1")
    await page.get_by_role("button", name="確認画面へ").click()
    await expect(page.locator(".confirm")).to_contain_text(
        re.compile(r"本登録済みの通知先 \d+ 件に掲載情報更新通知メールを送信します"))
    await page.get_by_role("button", name="掲載する").click()
    await expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"掲載情報を更新し、通知メールを [1-9]\d* 件送信しました"))
    notice = (await wait_for_mail(settings, admin.login_id, subject="掲載情報更新"))[0]
    assert title in notice.body and "https://kagi.example.jp/info/1" in notice.body

    # A minor update: 「掲載情報更新通知メールの送信は不要」.
    await page.get_by_label("掲載情報の件名").fill("誤字の修正")
    await page.get_by_label("掲載ページのURL").fill("https://kagi.example.jp/info/2")
    await page.get_by_label("掲載情報更新通知メールの送信は不要（軽微な更新）").check()
    await page.get_by_role("button", name="確認画面へ").click()
    await expect(page.locator(".confirm")).to_contain_text("掲載情報更新通知メールは送信しません。")
    await page.get_by_role("button", name="掲載する").click()
    await expect(page.get_by_role("status")).to_have_text("掲載情報を更新しました（通知メールは送信していません）。")

    # The admin who left: removed after confirming.
    await phone.goto("/operator/admin-contacts")
    await log_in(phone, operator.login_id, operator.password, await operator.totp())
    await expect(phone.get_by_role("heading", name="通知先アドレス")).to_be_visible()  # the login's redirect is done
    await no_horizontal_scroll(phone)
    await phone.locator(f'tr[data-contact="{admin.login_id}"]').get_by_role("link", name="削除").click()
    await expect(phone.locator(".confirm")).to_contain_text(f"{admin.login_id} を削除します。")
    await phone.get_by_role("button", name="削除する").click()
    await expect(phone.get_by_role("status")).to_have_text("通知先アドレスを削除しました。")
    await expect(phone.locator(f'tr[data-contact="{admin.login_id}"]')).to_have_count(0)
    # …and, still an admin of an active company, is offered for registration again.
    await expect(phone.locator(f'tr[data-candidate="{admin.login_id}"]')).to_have_count(1)
    assert len([m for m in await wait_for_mail(settings, admin.login_id, count=2)
                if "掲載情報更新" in m.subject]) == 1
