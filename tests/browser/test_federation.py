"""Kagi's OpenID Provider in a real browser: Chromium signs in on the hosted login page for a TAXIS client and lands
on the client's redirect URI with a code. Chromium applies the login page's CSP form-action to every redirect its
form submission leads to, so this is where a too-narrow policy would show (the HTTP tests cannot see it)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from playwright.async_api import Page, Route

from kagi_shared.settings import Settings
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
