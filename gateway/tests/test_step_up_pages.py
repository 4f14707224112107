"""A MyPage operation invite refuses for the want of a fresh 追加認証 answers with the step-up page; any other refusal
stays the screen's own to handle (``mypage.stepped_up``). The journeys through real services are in
tests/browser/test_console_mypage.py."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request

from kagi_gateway.app import create_app
from kagi_gateway.pages.forms import FormRefused, Refusal, Refused
from kagi_gateway.pages.mypage import stepped_up
from kagi_gateway.pages.session import CSRF_FIELD, PageSession


def page_request() -> Request[Any, Any, Any]:
    session = PageSession("sid", {CSRF_FIELD: "csrf", "stepUpSentTo": {"to": "o***@kagi.example.jp",
                                                                        "expires": "2026-04-01T00:10:00+00:00"}})
    return Request({"type": "http", "method": "POST", "path": "/mypage/invitations", "headers": [],
                    "litestar_app": create_app(), "state": {"page_session": session}})


async def refused(code: str) -> Any:
    raise Refused(Refusal(403, code, "追加認証が必要です。", extra={"remainingAttempts": 3}))


async def test_the_want_of_a_step_up_is_the_step_up_page() -> None:
    with pytest.raises(FormRefused) as shown:
        await stepped_up(page_request(), refused("step_up.required"))
    page = shown.value.page
    assert page.template_name == "mypage_step_up.html" and page.status_code == 403
    assert page.context["sent_to"] == "o***@kagi.example.jp" and page.context["remaining"] == 3


async def test_another_refusal_is_the_screens_own_and_an_answer_passes() -> None:
    with pytest.raises(Refused) as other:
        await stepped_up(page_request(), refused("invitation.limit"))
    assert other.value.refusal.code == "invitation.limit"

    async def issued() -> str:
        return "key"

    assert await stepped_up(page_request(), issued()) == "key"
