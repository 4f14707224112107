"""認証情報登録 (B2B): the mailed one-time URL → ワンタイムパスワード (the second mail) + a password and the
secret question → done. The URL's token is in the path, so the route is logged by its template only."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.response import Template

from kagi_gateway.controllers.enrolment import EnrolmentController
from kagi_gateway.deps import PUBLIC, settings_of
from kagi_gateway.pages.forms import Refusal, Refused, body_of, form_of, form_page, message_page, operate
from kagi_gateway.pages.rules import password_rules
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import Services
from kagi_shared.contracts.lifecycle import EnrolmentCheckIn, EnrolmentCompleteIn

TITLE = "認証情報登録"
LINK_PAGES = {
    "enrolment.link_invalid": "認証情報登録用URLが正しくありません",
    "enrolment.link_expired": "認証情報登録用URLの有効期限切れ",
    "enrolment.link_used": "認証情報登録用URLは使用済みです",
    "enrolment.link_voided": "認証情報登録用URLは無効になりました",
}
FIELDS = ("oneTimePassword", "password", "secretQuestion", "secretAnswer")


def link_page(request: Request[Any, Any, Any], refusal: Refusal) -> Template:
    return message_page(request, LINK_PAGES.get(refusal.code, TITLE), refusal.message, refusal.status, refusal.code)


def enrolment_page(request: Request[Any, Any, Any], token: str, login_id: str, refusal: Refusal | None = None,
                   values: dict[str, str] | None = None) -> Template:
    return form_page("enrolment.html", request, refusal, values, token=token, login_id=login_id,
                     rules=password_rules(settings_of(request)),
                     remaining=refusal.extra.get("remainingAttempts") if refusal else None)


class EnrolmentPages(Controller):
    path = "/registration"
    include_in_schema = False
    opt = {"secret_path": True}  # noqa: RUF012 - Litestar's layer option, read only

    async def _login_id(self, request: Request[Any, Any, Any], services: Services, token: str) -> str:
        known = page_session(request).get("enrolment")
        if known and known.get("token") == token:
            return str(known["loginId"])
        link = await operate(EnrolmentController.check, request, services, body_of({"token": token}, EnrolmentCheckIn))
        page_session(request).data["enrolment"] = {"token": token, "loginId": link.login_id}
        return str(link.login_id)

    @get("/{token:str}", opt={"roles": PUBLIC, "rate": "guess"})
    async def open_link(self, token: str, request: Request[Any, Any, Any],
                        services: NamedDependency[Services]) -> Template:
        try:
            login_id = await self._login_id(request, services, token)
        except Refused as refused:
            return link_page(request, refused.refusal)
        return enrolment_page(request, token, login_id)

    @post("/{token:str}", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200)
    async def complete(self, token: str, request: Request[Any, Any, Any],
                       services: NamedDependency[Services]) -> Template:
        values = await form_of(request)
        try:
            login_id = await self._login_id(request, services, token)
        except Refused as refused:
            return link_page(request, refused.refusal)
        body = {"token": token, **{name: values.get(name, "") for name in FIELDS}}
        try:
            done = await operate(EnrolmentController.complete, request, services,
                                 body_of(body, EnrolmentCompleteIn))
        except Refused as refused:
            if refused.refusal.code in LINK_PAGES:
                return link_page(request, refused.refusal)
            if refused.refusal.code == "enrolment.otp_invalid":
                refused.refusal.fields["oneTimePassword"] = refused.refusal.message
            return enrolment_page(request, token, login_id, refused.refusal, values)
        page_session(request).data.pop("enrolment", None)
        return message_page(request, "認証情報登録完了", done.message, links=[(done.login_url, "ログイン画面へ")])
