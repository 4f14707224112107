"""The hosted pages' own rules, in process (the services are unreachable here): every page declares its roles,
carries the security headers, refuses a post without the session's CSRF token or from another site, and sends a
signed-out person to the login page. The journeys through real services are in tests/browser."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from litestar.routes import HTTPRoute

from kagi_gateway.app import create_app
from kagi_gateway.deps import ANY_USER, PUBLIC
from tests.support import client_from, gateway_app, no_services


@asynccontextmanager
async def gateway(monkeypatch: pytest.MonkeyPatch, peer: str = "127.0.0.1") -> AsyncIterator[httpx.AsyncClient]:
    """The gateway in process, without services, called from ``peer``."""
    no_services(monkeypatch)
    async with gateway_app() as app, client_from(app, peer) as http:
        yield http


def page_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for route in create_app().routes:
        if isinstance(route, HTTPRoute) and not route.path.startswith(("/api/", "/schema")):
            for handler in route.route_handlers:
                if handler.opt.get("page"):
                    found += [(m, route.path, tuple(handler.opt.get("roles") or ()))
                              for m in handler.http_methods if m not in ("HEAD", "OPTIONS")]
    return sorted(found)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, html
    return match.group(1)


def test_every_page_declares_its_roles() -> None:
    routes = page_routes()
    paths = {path for _, path, _ in routes}
    assert {"/login", "/logout", "/invitations/accept", "/password-reset", "/register", "/admin-contacts/confirm",
            "/settings/notifications"} <= paths
    for method, path, roles in routes:
        assert roles, (method, path)
        assert roles == PUBLIC or set(roles) <= set(ANY_USER), (method, path, roles)


async def test_a_page_is_japanese_labelled_and_carries_the_security_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        page = await client.get("/login")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        html = page.text
        assert '<html lang="ja">' in html and "<title>ログイン | Kagi マイページ</title>" in html
        for field_id in re.findall(r'<input id="([^"]+)"', html):
            assert f'<label for="{field_id}">' in html, field_id
        assert "<script" not in html
        csp = page.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src" not in csp and "default-src 'none'" in csp
        assert page.headers["x-frame-options"] == "DENY"
        assert page.headers["referrer-policy"] == "no-referrer"
        cookie = page.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie  # local dev: plain http


async def test_a_post_without_the_csrf_token_or_from_another_site_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        csrf = csrf_of((await client.get("/login")).text)
        form = {"loginId": "someone@example.jp", "password": "whatever-2026"}
        missing = await client.post("/login", data=form)
        assert missing.status_code == 403 and 'data-code="page.csrf_invalid"' in missing.text
        wrong = await client.post("/login", data={**form, "csrf": csrf[::-1]})
        assert wrong.status_code == 403
        cross = await client.post("/login", data={**form, "csrf": csrf}, headers={"origin": "https://evil.example"})
        assert cross.status_code == 403 and 'data-code="page.cross_site"' in cross.text
        fetched = await client.post("/login", data={**form, "csrf": csrf}, headers={"sec-fetch-site": "cross-site"})
        assert fetched.status_code == 403
        # The right token from this site reaches the login itself (lifecycle is unreachable here: 503, shown as a page).
        passed = await client.post("/login", data={**form, "csrf": csrf}, headers={"origin": "http://gateway"})
        assert passed.status_code == 503 and 'data-code="service.unavailable"' in passed.text


async def test_a_signed_out_person_is_sent_to_the_login_page(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        for path in ("/settings/notifications", "/account", "/register/contract", "/password/change"):
            page = await client.get(path)
            assert page.status_code == 303 and page.headers["location"] == f"/login?next={path}"


async def test_the_login_page_follows_only_a_local_next(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        page = await client.get("/login", params={"next": "//evil.example/x"})
        assert 'name="next" value="/account"' in page.text
        page = await client.get("/login", params={"next": "/settings/notifications"})
        assert 'name="next" value="/settings/notifications"' in page.text


async def test_a_page_opened_from_abroad_gets_the_abroad_answer_as_a_page(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch, peer="8.8.8.8") as client:
        for path in ("/login", "/invitations/accept?token=abc"):
            page = await client.get(path)
            assert page.status_code == 403 and page.headers["content-type"].startswith("text/html")
            assert 'data-code="edge.abroad_forbidden"' in page.text
            assert "日本国外からのアクセスは禁止されています" in page.text
            assert page.headers["x-frame-options"] == "DENY"
