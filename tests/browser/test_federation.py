"""Federation in a real browser, both ways.

Kagi's OpenID Provider: Chromium signs in on the hosted login page for a TAXIS client and lands on the client's
redirect URI with a code. Kagi as relying party of panva's oidc-provider standing in for LINE (tools/test-idp, the
e2e ``line`` fixture): an invitee redeems a key with 「LINEでログイン」; an owner links LINE after a fresh step-up,
sees 「SNS連携の状況」 in the user list, logs in with LINE alone in another browser, and unlinks. Chromium applies a
page's CSP form-action to every redirect its form submission leads to, so this is where a too-narrow policy would
show (the HTTP tests cannot see it). Forged ID tokens are refused in gateway/tests/test_federation_tokens.py (real
keys and signatures) and through the callback in tests/e2e/test_federation.py."""

from __future__ import annotations

import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import Browser, Page, Route, expect

from kagi_shared.settings import Settings
from tests.browser.conftest import new_page
from tests.browser.test_journeys import invitation_url, issue_key, log_in
from tests.e2e.conftest import code_in, create_user, wait_for_mail
from tests.e2e.test_invite import stepped_up_owner
from tests.e2e.test_oidc_provider import PASSWORD, REDIRECT, register_client, system_user, target_system


async def test_a_system_user_signs_in_to_taxis_in_chromium(page: Page, system: str, settings: Settings) -> None:
    registered = await register_client(settings)
    rp = target_system(system, registered)
    login_id = await system_user(settings, taxis="1011")
    started = await rp.create_authorization_url(REDIRECT)
    arrived: list[str] = []

    async def taxis(route: Route) -> None:  # the TAXIS server, answered inside the browser
        arrived.append(route.request.url)
        await route.fulfill(content_type="text/html; charset=utf-8", body="<p>TAXIS</p>")

    await page.route(f"{REDIRECT}**", taxis)
    await page.goto(started["url"])
    await page.get_by_label("ID（メールアドレス）").fill(login_id)
    await page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    await page.get_by_role("button", name="ログイン").click()
    await page.wait_for_url(f"{REDIRECT}**")
    assert arrived, page.url
    query = parse_qs(urlsplit(arrived[0]).query)
    assert query["state"] == [started["state"]] and query["code"]
    token = await rp.fetch_access_token(redirect_uri=REDIRECT, code=query["code"][0],
                                        code_verifier=started["code_verifier"])
    claims = await rp.parse_id_token(token, nonce=started["nonce"])
    assert claims["kagi_permission"] == "1011"


async def sign_in_at_line(page: Page, line_user: str) -> None:
    """The provider's own development login and consent screens (any login name becomes the subject)."""
    await page.locator('input[name="login"]').fill(line_user)
    await page.locator('input[name="password"]').fill("any")
    await page.get_by_role("button", name="Sign-in").click()
    await page.get_by_role("button", name="Continue").click()


async def test_an_invitee_redeems_a_key_with_line(page: Page, settings: Settings, gateway: httpx.AsyncClient,
                                                  line: dict[str, str]) -> None:
    owner = await stepped_up_owner(settings, gateway)
    key = await issue_key(gateway, owner)
    guest = f"guest-{uuid.uuid4().hex[:8]}@example.jp"
    url = await invitation_url(page, settings, guest)
    await page.goto(url)
    await page.get_by_label("認証キー").fill(key)
    await page.get_by_role("button", name="次へ").click()
    await expect(page.get_by_role("heading", name="ご利用になるIDをお選びください")).to_be_visible()
    await page.get_by_role("link", name="LINEでログイン").click()
    await page.wait_for_url(f"{line['issuer']}/**")
    await sign_in_at_line(page, f"line-{uuid.uuid4().hex[:8]}")

    await expect(page.get_by_role("heading", name="利用者の登録完了")).to_be_visible()
    await expect(page.get_by_text(owner.login_id)).to_be_visible()
    await expect(page.get_by_text("「LINEでログイン」からログインしてください")).to_be_visible()
    users = (await gateway.get("/api/v1/me/users", headers=owner.auth)).json()["items"]
    assert [(u["loginId"], u["accountTypeLabel"], u["externalIds"]) for u in users][1:] == [
        (guest, "外部サービスID", ["line"])]


async def test_link_line_see_it_in_the_user_list_log_in_with_it_and_unlink(
        page: Page, browser: Browser, system: str, settings: Settings, gateway: httpx.AsyncClient,
        line: dict[str, str], request: pytest.FixtureRequest) -> None:
    owner = await create_user(settings, gateway, ["owner"])
    line_user = f"line-{uuid.uuid4().hex[:8]}"
    await page.goto("/account/external")
    await log_in(page, owner.login_id, owner.password)
    row = page.locator('tr[data-provider="line"]')
    await expect(row).to_contain_text("未連携")
    await expect(page.get_by_role("button", name="連携する")).to_have_count(0)  # not before a fresh step-up

    await page.get_by_role("button", name="認証コードを送信する").click()
    code = code_in((await wait_for_mail(settings, owner.login_id))[-1])
    await page.get_by_label("認証コード").fill(code)
    await page.get_by_role("button", name="認証する").click()
    await expect(page.get_by_text("追加認証が完了しました。")).to_be_visible()
    await row.get_by_role("button", name="連携する").click()  # a form whose answer redirects to the provider
    await page.wait_for_url(f"{line['issuer']}/**")
    await sign_in_at_line(page, line_user)
    await expect(page.get_by_text("LINEと連携しました。")).to_be_visible()

    # 利用者一覧 in the same session (its step-up is still fresh): 「SNS連携の状況」 per provider.
    await page.goto("/mypage/users")
    state = page.locator('td[data-label="SNS連携の状況"] li[data-provider="line"]')
    await expect(state).to_have_text("LINE: 連携済み")
    await expect(state).to_have_attribute("data-linked", "yes")

    # Another browser signs in with LINE alone and lands on the owner's MyPage.
    async for other in new_page(browser, system, request):
        await other.goto("/login")
        await other.get_by_role("link", name="LINEでログイン").click()
        await other.wait_for_url(f"{line['issuer']}/**")
        await sign_in_at_line(other, line_user)
        await expect(other.get_by_role("heading", name="マイページ")).to_be_visible()
        await expect(other.get_by_text(owner.login_id).first).to_be_visible()

    await page.goto("/account/external")
    await row.get_by_role("button", name="連携を解除する").click()
    await expect(page.get_by_text("LINEとの連携を解除しました。")).to_be_visible()
    await expect(row).to_contain_text("未連携")
    await page.goto("/mypage/users")
    await expect(state).to_have_text("LINE: 未連携")
