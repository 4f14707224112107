"""What the pages refuse, through the real gateway: a post without the session's CSRF token, a post from another
site (plain HTTP and a real browser submitting another page's form), and being shown inside another site's frame."""

from __future__ import annotations

import re

import httpx
from playwright.async_api import Page, Route, expect


async def test_a_post_without_csrf_or_from_another_site_is_refused_over_http(system: str) -> None:
    async with httpx.AsyncClient(base_url=system, timeout=15) as client:
        opened = await client.get("/login")
        assert opened.status_code == 200
        csrf = re.search(r'name="csrf" value="([^"]+)"', opened.text)
        assert csrf
        form = {"loginId": "nobody@example.jp", "password": "Whatever-2026"}
        missing = await client.post("/login", data=form)
        assert missing.status_code == 403 and 'data-code="page.csrf_invalid"' in missing.text
        cross = await client.post("/login", data={**form, "csrf": csrf.group(1)},
                                  headers={"origin": "https://evil.example"})
        assert cross.status_code == 403 and 'data-code="page.cross_site"' in cross.text
        own = await client.post("/login", data={**form, "csrf": csrf.group(1)},
                                headers={"origin": system})
        assert own.status_code == 401 and 'data-code="auth.' in own.text  # judged by the login itself

    async with httpx.AsyncClient(base_url=system, timeout=15) as stranger:  # another person's session: no token
        stolen = await stranger.post("/settings/notifications", data={"csrf": csrf.group(1)})
        assert stolen.status_code == 403


async def test_another_sites_form_cannot_post_and_no_site_can_frame_a_page(page: Page, system: str) -> None:
    await page.goto("/login")  # the person has a session with the gateway

    async def other_site(route: Route) -> None:
        await route.fulfill(content_type="text/html; charset=utf-8", body=EVIL_PAGE.format(system=system))

    await page.route(f"{EVIL}/**", other_site)  # a page served from another origin
    await page.goto(f"{EVIL}/")
    await page.get_by_role("button", name="送信").click()
    await expect(page.locator(".message")).to_have_attribute("data-code", "page.cross_site")
    assert "他のサイトからの送信は受け付けられません。" in await page.inner_text("main")

    await page.goto(f"{EVIL}/frame")
    framed = page.frames[1]
    assert framed.url.startswith(("chrome-error://", system)), framed.url
    assert await framed.locator("input[name=password]").count() == 0  # Chromium refused to show the page


EVIL = "http://evil.example"
EVIL_PAGE = """<!doctype html><html lang="en"><meta charset="utf-8"><title>other site</title>
<form method="post" action="{system}/settings/notifications"><input name="receiveGeneralNotices" value="off">
<button>送信</button></form><iframe src="{system}/login" title="framed"></iframe></html>"""
