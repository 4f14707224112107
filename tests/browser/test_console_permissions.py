"""《システム利用権限管理》 and 託送受付センター in the browser, as consignment-system-guide.txt chapter 5 has them: the
company admin files a new request from the catalogue's form (the projected dates shown before filing), the operator
accepts it and runs the batch, the target systems acknowledge, the admin sees 処理完了 and 済 per system; then the
admin's access review with a revoke through its confirmation step and the CSV download; the operator cancels a
request with a reason and verifies the audit chain."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from playwright.async_api import Browser, Page, expect

from kagi_shared.events import new_envelope
from kagi_shared.events import permissions as ev
from kagi_shared.kafka import make_producer, publish
from kagi_shared.settings import Settings
from tests.browser.conftest import new_page
from tests.browser.test_journeys import assert_page_basics, log_in, no_horizontal_scroll, shot
from tests.e2e.conftest import company_with_admin, create_user
from tests.e2e.test_permissions import grant_commands


async def file_new_request(page: Page, user_id: str) -> str:
    """The admin's 利用権限設定（新規） from the console menu; the request's id."""
    await page.get_by_role("link", name="利用権限設定（新規）").click()
    await expect(page.get_by_role("heading", name="利用権限設定（新規）")).to_be_visible()
    await assert_page_basics(page)
    await page.get_by_label("ID（メールアドレス）").fill(user_id)
    await page.get_by_label("氏名（漢字）").fill("託送 花子")
    await page.get_by_label("氏名（カナ）").fill("タクソウ ハナコ")
    await page.get_by_label("委託先事業者").select_option(label="委託先A株式会社")
    taxis = page.get_by_label(re.compile("^TAXIS"))
    await expect(taxis.locator("option")).to_have_text(["なし", "1010:更新権限なし", "1011:更新権限あり",
                                                        "1012:更新権限あり(業務限定あり)"])
    await expect(page.get_by_text("「1110:委託先事業者」は2022年1月24日に廃止されました。")).to_be_visible()
    loacus = page.get_by_label(re.compile("^LOACUS"))  # 03010 is a manufacturer's code: not offered here
    await expect(loacus.locator("option")).to_have_text(["なし", "02010:託送供給依頼者(更新権限)",
                                                         "02011:託送供給依頼者(参照権限)"])
    await taxis.select_option("1011")
    await page.get_by_label(re.compile("^JOHS")).select_option("J1010")
    await page.get_by_role("button", name="確認画面へ").click()

    await expect(page.get_by_role("heading", name="申請内容の確認")).to_be_visible()
    for label in ("受付予定日", "バッチ処理日", "TAXIS 利用開始日"):
        await expect(page.locator(f'td[data-label="{label}"]')).to_have_text(re.compile(r"^\d{4}/\d{2}/\d{2}$"))
    await expect(page.get_by_role("cell", name="1011:更新権限あり")).to_be_visible()
    await shot(page, "company-request-preview")
    await page.get_by_role("button", name="申請する").click()
    await expect(page.get_by_role("status")).to_have_text("設定の申請を受け付けました（申請済）。")
    await expect(page.locator(".progress")).to_have_text("申請済")
    return page.url.rsplit("/", 1)[1]


async def audit_shows(desk: Page, target: str) -> None:
    """The audit view (newest first) lists ``target`` once the audit worker has recorded it: the ledger is written
    from the broker, behind whatever backlog earlier tests left there (the gateway unit tests send hundreds of
    entries to the same broker when they run first)."""
    entry = desk.get_by_text(target, exact=True)
    for _ in range(120):
        if await entry.count():
            break
        await asyncio.sleep(0.5)
        await desk.reload()
    await expect(entry).to_be_visible()


async def acknowledge(settings: Settings, request_id: str, systems: int) -> None:
    """The target systems apply their commands and say so on ``permissions.acks`` (they are outside Kagi)."""
    commands: list[ev.GrantCommanded] = []
    for _ in range(100):
        commands = [c for s in ("TAXIS", "JOHS", "INFOSITE") for c in await grant_commands(settings, s, request_id)]
        if len(commands) == systems:
            break
        await asyncio.sleep(0.3)
    assert len(commands) == systems, commands
    producer = make_producer(settings, "browser-target-systems")
    await producer.start()
    try:
        for command in commands:
            await publish(producer, "permissions.acks", new_envelope(ev.GrantAcknowledged(
                command_id=command.command_id, request_id=request_id, system=command.system,
                user_id=command.user_id, outcome="applied"), source=f"target/{command.system.lower()}",
                subject=request_id))
    finally:
        await producer.stop()


async def test_admin_files_operator_accepts_and_batches_admin_sees_done_then_reviews(
        page: Page, browser: Browser, system: str, settings: Settings, gateway: httpx.AsyncClient,
        request: pytest.FixtureRequest) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    user_id = f"Takuso_{uuid.uuid4().hex[:8]}@example.jp"
    await page.goto("/login")
    await log_in(page, admin.login_id, admin.password, await admin.totp())
    await page.get_by_role("link", name="システム利用権限管理").click()
    await expect(page.get_by_text("パートナーガス株式会社")).to_be_visible()
    request_id = await file_new_request(page, user_id)

    async for desk in new_page(browser, system, request):
        await desk.goto("/login")
        await log_in(desk, operator.login_id, operator.password, await operator.totp())
        await desk.get_by_role("link", name="託送受付センター").click()
        await expect(desk.get_by_role("heading", name="受付待ちの申請")).to_be_visible()
        await assert_page_basics(desk)
        row = desk.locator(f'tr[data-request="{request_id}"]')
        await expect(row).to_contain_text("パートナーガス株式会社")
        await row.get_by_role("button", name="受付する").click()
        notice = desk.get_by_role("status")
        await expect(notice).to_contain_text(f"{user_id} の申請を受付しました")
        batch = re.search(r"(\d{4})/(\d{2})/(\d{2})", await notice.inner_text())
        assert batch, await notice.inner_text()
        await expect(desk.locator(f'tr[data-request="{request_id}"]')).to_have_count(0)
        await desk.get_by_label("バッチ処理日").fill("-".join(batch.groups()))
        await desk.get_by_role("button", name="バッチを実行する").click()
        await expect(desk.get_by_role("status")).to_contain_text("のバッチを実行しました（申請 1 件")

        await acknowledge(settings, request_id, 3)

        await page.get_by_role("link", name="申請状況の確認").click()
        await expect(page.get_by_role("heading", name="申請状況の確認")).to_be_visible()
        await assert_page_basics(page)
        await page.get_by_label("ID").fill(user_id)
        await page.get_by_label("申請状況").select_option(label="処理完了")
        for _ in range(60):  # the acknowledgements arrive through the permissions worker
            await page.get_by_role("button", name="検索する").click()
            if await page.locator(f'tr[data-request="{request_id}"]').count():
                break
            await asyncio.sleep(0.5)
        row = page.locator(f'tr[data-request="{request_id}"]')
        await expect(row.locator(".progress")).to_have_text("処理完了")
        for system_key, shown in (("TAXIS", "済"), ("JOHS", "済"), ("JUJU", "(不要)"), ("LOACUS", "(不要)"),
                                  ("INFOSITE", "済")):
            await expect(row.locator(f'td[data-label="{system_key}"]')).to_have_text(shown)
        await shot(page, "company-requests-done")

        # 棚卸: the admin revokes the user (after confirming) and downloads the report.
        await page.get_by_role("link", name="棚卸").click()
        await page.get_by_role("button", name="棚卸を開始する").click()
        await expect(page.get_by_role("status")).to_contain_text("棚卸を開始しました")
        entry = page.locator(f'tr[data-user="{user_id}"]')
        await expect(entry.locator('td[data-label="TAXIS"]')).to_have_text("1011:更新権限あり")
        await entry.get_by_role("button", name="抹消").click()
        await expect(page.get_by_role("heading", name="利用権限抹消の確認")).to_be_visible()
        await page.get_by_role("button", name="抹消する").click()
        await expect(page.locator(f'tr[data-user="{user_id}"] .decision')).to_have_text("抹消")
        async with page.expect_download() as download_info:
            await page.get_by_role("link", name="結果をCSVでダウンロード").click()
        download = await download_info.value
        assert download.suggested_filename.endswith(".csv")
        csv = (await download.path()).read_text(encoding="utf-8-sig")
        assert f"{user_id},託送 花子" in csv

        # The operator's audit view holds the console's actions, and the chain verifies.
        await desk.get_by_role("link", name="監査ログ").click()
        await audit_shows(desk, f"/operator/requests/{request_id}/accept")
        await expect(desk.locator("table.list")).to_contain_text("GET /operator")  # the console reads are audited too
        await desk.get_by_role("link", name="ハッシュ連鎖を検証する").click()
        await expect(desk.locator("[data-verdict]")).to_have_attribute("data-verdict", "ok")


async def test_operator_cancels_a_request_with_a_reason_on_a_phone(page: Page, phone: Page, settings: Settings,
                                                                    gateway: httpx.AsyncClient) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    await page.goto("/company")
    await log_in(page, admin.login_id, admin.password, await admin.totp())
    user_id = f"Cancel_{uuid.uuid4().hex[:8]}@example.jp"
    request_id = await file_new_request(page, user_id)

    await phone.goto("/operator")
    await log_in(phone, operator.login_id, operator.password, await operator.totp())
    await expect(phone.get_by_role("heading", name="受付待ちの申請")).to_be_visible()  # the login's redirect is done
    await no_horizontal_scroll(phone)
    await phone.locator(f'tr[data-request="{request_id}"]').get_by_role("link", name="取消").click()
    await expect(phone.get_by_role("heading", name="申請取消")).to_be_visible()
    await phone.get_by_label("取消理由").fill("申請者の依頼により取り消し（電話確認済み）")
    await phone.get_by_role("button", name="申請を取り消す").click()
    await expect(phone.get_by_role("status")).to_have_text("申請を取り消しました。")
    await expect(phone.locator(".progress")).to_have_text("申請取消")
    await expect(phone.get_by_text("申請者の依頼により取り消し（電話確認済み）")).to_be_visible()
    await no_horizontal_scroll(phone)

    await page.reload()
    await expect(page.locator(".progress")).to_have_text("申請取消")


async def test_operator_registers_a_company_whose_admin_then_manages_it(page: Page, settings: Settings,
                                                                        gateway: httpx.AsyncClient) -> None:
    operator = await create_user(settings, gateway, ["operator"])
    admin = await create_user(settings, gateway, ["company_admin"])
    name = f"東西ガス{uuid.uuid4().hex[:4]}株式会社"
    await page.goto("/operator/companies")
    await log_in(page, operator.login_id, operator.password, await operator.totp())
    await expect(page.get_by_role("heading", name="事業者", exact=True)).to_be_visible()
    await assert_page_basics(page)
    await page.get_by_label("事業者名").fill(name)
    await page.get_by_label("託送供給依頼者").check()
    await page.get_by_label("製造事業者").check()
    await page.get_by_label("システム窓口責任者（正）氏名").fill("窓口 一郎")
    await page.get_by_label("システム窓口責任者（正）メールアドレス").fill(admin.login_id)
    await page.get_by_label("委託先事業者（1行に1社、任意）").fill("委託先B株式会社\n委託先C株式会社")
    await page.get_by_label("JUJU 利用者の上限（任意、既定は5名）").fill("たくさん")
    await page.get_by_role("button", name="登録する").click()
    await expect(page.locator("#e-jujuMaxUsers")).to_be_visible()  # refused at its field, nothing registered
    await expect(page.get_by_label("事業者名")).to_have_value(name)
    await page.get_by_label("託送供給依頼者").check()
    await page.get_by_label("製造事業者").check()
    await page.get_by_label("JUJU 利用者の上限（任意、既定は5名）").fill("3")
    await page.get_by_role("button", name="登録する").click()
    await expect(page.get_by_role("status")).to_have_text(f"{name} を登録しました。")
    await expect(page.get_by_role("cell", name=name)).to_be_visible()

    await page.get_by_role("button", name="ログアウト").click()
    await page.goto("/company/requests/new?kind=new")
    await log_in(page, admin.login_id, admin.password, await admin.totp())
    await expect(page.get_by_text("（貴社の上限: 3名）")).to_be_visible()
    await expect(page.locator("[data-juju-used]")).to_have_text(
        "現在 0名が利用中または申請中です（上限 3名、残り 3名）。")
    await expect(page.locator("[data-juju-full]")).to_have_count(0)
    loacus = page.get_by_label(re.compile("^LOACUS"))  # a manufacturer too: 03010 is offered
    await expect(loacus.locator("option")).to_have_count(4)
    await expect(page.get_by_label("委託先事業者")).to_contain_text("委託先C株式会社")


async def test_the_new_request_form_warns_when_the_companys_juju_places_are_taken(
        page: Page, settings: Settings, gateway: httpx.AsyncClient) -> None:
    operator, admin = await company_with_admin(settings, gateway)
    company = (await gateway.get("/api/v1/company", headers=admin.auth)).json()
    limited = await gateway.patch(f"/api/v1/operator/companies/{company['companyId']}", headers=operator.auth,
                                  json={"jujuMaxUsers": 1})
    assert limited.status_code == 200, limited.text
    await page.goto("/company/requests/new?kind=new")
    await log_in(page, admin.login_id, admin.password, await admin.totp())
    await expect(page.locator("[data-juju-used]")).to_have_text(
        "現在 0名が利用中または申請中です（上限 1名、残り 1名）。")
    await expect(page.locator("[data-juju-full]")).to_have_count(0)

    # One request that gives JUJU, not yet accepted, takes the place.
    filed = await gateway.post("/api/v1/permission-requests", headers=admin.auth, json={
        "kind": "new", "userId": f"Juju_{uuid.uuid4().hex[:8]}@example.jp", "nameKanji": "授受 一郎",
        "nameKana": "ジュジュ イチロウ", "permissions": {"JUJU": "yes"}})
    assert filed.status_code == 201, filed.text
    await page.reload()
    await expect(page.locator("[data-juju-used]")).to_have_text(
        "現在 1名が利用中または申請中です（上限 1名、残り 0名）。")
    await expect(page.locator("[data-juju-full]")).to_contain_text("上限（1名）に達しているため")
    await shot(page, "company-request-juju-full")

    # Asking all the same is refused at the JUJU field by the service's own rule.
    await page.get_by_label("ID（メールアドレス）").fill(f"Juju_{uuid.uuid4().hex[:8]}@example.jp")
    await page.get_by_label("氏名（漢字）").fill("授受 二郎")
    await page.get_by_label("氏名（カナ）").fill("ジュジュ ジロウ")
    await page.get_by_label(re.compile("^JUJU")).select_option("yes")
    await page.get_by_role("button", name="確認画面へ").click()
    await page.get_by_role("button", name="申請する").click()
    await expect(page.get_by_text("JUJU の利用者は1事業者あたり1名までです")).to_be_visible()


async def test_a_console_of_another_role_is_refused_with_a_way_back(page: Page, settings: Settings,
                                                                      gateway: httpx.AsyncClient) -> None:
    admin = await create_user(settings, gateway, ["company_admin"])
    await page.goto("/operator")
    await log_in(page, admin.login_id, admin.password, await admin.totp())
    await expect(page.locator(".message")).to_have_attribute("data-code", "auth.forbidden")
    await page.get_by_role("link", name="マイページトップへ").click()
    await expect(page.get_by_role("link", name="システム利用権限管理")).to_be_visible()
    await expect(page.get_by_role("link", name="託送受付センター")).to_have_count(0)
