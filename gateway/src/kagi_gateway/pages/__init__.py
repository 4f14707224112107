"""Hosted pages at the portal URLs the mails link to: plain server-rendered HTML forms (Jinja2), no script.

Each page runs the JSON API's own route handler (``forms.operate``), so the pages hold no business rule.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Response, Router, get
from litestar.exceptions import HTTPException, ValidationException
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Template
from litestar.template.config import TemplateConfig

from kagi_gateway.deps import PUBLIC
from kagi_gateway.pages.account import AccountPages
from kagi_gateway.pages.company import CompanyPages
from kagi_gateway.pages.console import copy_script, register_filters
from kagi_gateway.pages.contracts import ContractPages
from kagi_gateway.pages.enrolment import EnrolmentPages
from kagi_gateway.pages.forms import TEMPLATES, FormRefused, Refused, message_page, refusal_of, see_other
from kagi_gateway.pages.infosite import InfoSitePages
from kagi_gateway.pages.invitations import InvitationPages
from kagi_gateway.pages.locations import LocationPages, ViewingPages
from kagi_gateway.pages.mypage import MyPagePages
from kagi_gateway.pages.notifications import NotificationPages
from kagi_gateway.pages.operator import OperatorPages
from kagi_gateway.pages.registration import RegistrationPages
from kagi_gateway.pages.session import LoginRequired, PageMiddleware, page_guard, page_response
from kagi_gateway.pages.totp import TotpPages

__all__ = ["PageMiddleware", "page_response", "pages_router", "template_config"]
from kagi_gateway.services import ForwardedProblem
from kagi_shared.problems import Problem

# The consoles (issue 18): MyPage, 権限管理 (company admin), 託送受付センター (operator).
CONSOLES: list[Any] = [MyPagePages, ContractPages, LocationPages, ViewingPages, CompanyPages, OperatorPages,
                       InfoSitePages, copy_script]
STYLESHEET = (TEMPLATES / "kagi.css").read_text(encoding="utf-8")


def template_config() -> TemplateConfig[JinjaTemplateEngine]:
    return TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine, engine_callback=register_filters)


@get("/static/kagi.css", opt={"roles": PUBLIC}, media_type="text/css", include_in_schema=False)
async def stylesheet() -> str:
    return STYLESHEET


def _refused(request: Request[Any, Any, Any], exc: Exception) -> Template:
    refusal = exc.refusal if isinstance(exc, Refused) else refusal_of(exc)  # type: ignore[arg-type]
    session = request.scope.get("state", {}).get("page_session")
    home = [("/account", "マイページトップへ")] if session is not None and session.get("accessToken") else []
    return message_page(request, "エラー", refusal.message, refusal.status, refusal.code, links=home)


def _form_again(request: Request[Any, Any, Any], exc: Exception) -> Template:
    assert isinstance(exc, FormRefused)
    return exc.page


def _http(request: Request[Any, Any, Any], exc: Exception) -> Template:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    message = "入力内容に誤りがあります。" if isinstance(exc, ValidationException) else "ページを表示できませんでした。"
    return message_page(request, "エラー", message, status, f"http.{status}")


def _login(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, LoginRequired)
    if exc.problem is not None and exc.problem.code == "auth.password_change_required":
        return see_other("/password/change")
    if exc.problem is not None and exc.problem.code == "auth.totp_enrolment_required":
        return see_other("/totp")
    target = request.url.path if request.method == "GET" else "/account"
    return see_other(f"/login?next={target}")


def pages_router() -> Router:
    # The protocol modules build on the pages (session, forms, login), so they are imported once those exist.
    from kagi_gateway.federation import FederationPages
    from kagi_gateway.provider import ProviderPages

    return Router("/", route_handlers=[AccountPages, InvitationPages, RegistrationPages, NotificationPages,
                                       EnrolmentPages, TotpPages, ProviderPages, FederationPages, stylesheet,
                                       *CONSOLES],
                  guards=[page_guard], opt={"page": True},
                  include_in_schema=False,
                  exception_handlers={FormRefused: _form_again, Refused: _refused, Problem: _refused,
                                      ForwardedProblem: _refused, HTTPException: _http, LoginRequired: _login})
