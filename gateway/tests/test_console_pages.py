"""The consoles' own rules, in process (the services are unreachable here): every console page declares roles the
gateway knows, every one of their posts is refused without the session's CSRF token, and a signed-out person who
opens one is sent to the login page. The journeys through real services are in tests/browser/test_console_*.py."""

from __future__ import annotations

import re

import pytest
from test_pages import gateway, page_routes

from kagi_gateway.deps import ANY_USER

CONSOLES = ("/mypage", "/viewing", "/company", "/operator")


def console_routes() -> list[tuple[str, str, tuple[str, ...]]]:
    return [r for r in page_routes() if r[1].startswith(CONSOLES)]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}:]+(:[^}]+)?\}", "x0", path)


def test_every_console_page_declares_known_roles() -> None:
    routes = console_routes()
    assert len(routes) >= 40
    for method, path, roles in routes:
        assert roles and set(roles) <= set(ANY_USER), (method, path, roles)
    assert ("POST", "/operator/requests/{request_id_:str}/accept", ("operator",)) in routes
    assert ("GET", "/company/reviews/{review_id:str}/report.csv", ("company_admin",)) in routes


async def test_console_posts_need_the_csrf_token_and_pages_a_login(monkeypatch: pytest.MonkeyPatch) -> None:
    async with gateway(monkeypatch) as client:
        for method, path, _ in console_routes():
            url = concrete(path)
            if method == "GET":
                reply = await client.get(url)
                assert reply.status_code == 303 and reply.headers["location"] == f"/login?next={url}", (path, reply)
            else:
                reply = await client.request(method, url, data={"reason": "x"})
                assert reply.status_code == 403 and 'data-code="page.csrf_invalid"' in reply.text, (path, reply)
