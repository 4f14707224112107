"""お知らせ設定 (a signed-in person's general notices) and 管理者メールアドレスの本登録 (the mailed link)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from kagi_gateway.controllers.notify import AdminContactConfirmController, NotificationPreferencesController
from kagi_gateway.deps import ANY_USER, PUBLIC
from kagi_gateway.pages import forms
from kagi_gateway.services import Services
from kagi_shared.contracts.notify import AdminContactConfirmIn, NotificationPreferencesIn

Token = Annotated[str | None, QueryParameter(name="token", max_length=256, required=False)]


class NotificationPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/settings/notifications", opt={"roles": ANY_USER})
    async def preferences(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        current = await forms.operate(NotificationPreferencesController.show, request, services)
        return forms.form_page("notifications.html", request, prefs=current, saved=False)

    @post("/settings/notifications", opt={"roles": ANY_USER}, status_code=200)
    async def save(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        values = await forms.form_of(request)
        wanted = values.get("receiveGeneralNotices") == "on"
        try:
            saved = await forms.operate(NotificationPreferencesController.update, request, services,
                                        forms.body_of({"receiveGeneralNotices": wanted}, NotificationPreferencesIn))
        except forms.Refused as refused:
            current = await forms.operate(NotificationPreferencesController.show, request, services)
            return forms.form_page("notifications.html", request, refused.refusal, prefs=current, saved=False)
        return forms.form_page("notifications.html", request, prefs=saved, saved=True)

    # -- 管理者メールアドレスの本登録: the link only opens a button; mail scanners that fetch links confirm nothing --
    @get("/admin-contacts/confirm", opt={"roles": PUBLIC})
    async def confirm_form(self, request: Request[Any, Any, Any], token: Token = None) -> Template:
        return forms.form_page("admin_confirm.html", request, token=token or "")

    @post("/admin-contacts/confirm", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200)
    async def confirm(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        try:
            done = await forms.operate_form(AdminContactConfirmController.confirm, request, services,
                                            AdminContactConfirmIn)
        except forms.Refused as refused:
            return forms.refusal_page(request, "管理者メールアドレスの本登録", refused.refusal)
        return forms.message_page(request, "本登録完了", f"管理者メールアドレス {done.email} の本登録が完了しました。")
