"""託送受付センター's side of the 託送情報共有サイト (consignment-system-guide.txt 7-3): the システム窓口責任者's
contact addresses (仮登録 → the mailed link → 本登録, a fresh link when one expired, removal of one who left) and the
posting of a site update with its notice mail, or without it (「掲載情報更新通知メールの送信は不要」). Every rule and
answer is notify's, reached through the JSON API's handlers."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from kagi_gateway.controllers.notify import AdminContactsController, InfoSiteController
from kagi_gateway.controllers.permissions import PermissionOperatorController
from kagi_gateway.pages.console import act, confirm_page, console_page, tell
from kagi_gateway.pages.forms import Refusal, Refused, body_of, form_of, operate, operate_form, see_other
from kagi_gateway.services import Services
from kagi_shared.contracts.notify import AdminContactIn, SiteUpdateIn

OPERATOR = ("operator",)
CONTACTS = "/operator/admin-contacts"
SITE = "/operator/info-site"
STATUS_LABELS = {"provisional": "仮登録", "active": "本登録"}


async def _candidates(request: Request[Any, Any, Any], services: Services, contacts: list[Any]) -> list[Any]:
    """The active companies' システム窓口責任者 whose address is not registered yet (seed 7-3 ①: the centre registers
    the addresses it received with the 利用申請)."""
    known = {c.email.lower() for c in contacts}
    found: list[tuple[str, str, str]] = []
    for company in await operate(PermissionOperatorController.companies, request, services):
        if company.status != "active":
            continue
        for admin in (company.primary_admin, company.secondary_admin):
            if admin is not None and admin.email.lower() not in known:
                known.add(admin.email.lower())
                found.append((company.name, admin.name, admin.email))
    return found


class InfoSitePages(Controller):
    path = "/operator"
    include_in_schema = False

    # -- 通知先メールアドレス ----------------------------------------------------------------------------
    @get("/admin-contacts", opt={"roles": OPERATOR})
    async def contacts(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await self._contacts_page(request, services)

    async def _contacts_page(self, request: Request[Any, Any, Any], services: Services,
                             values: dict[str, str] | None = None, refusal: Refusal | None = None) -> Template:
        found = await operate(AdminContactsController.index, request, services)
        return console_page("operator_admin_contacts.html", request, contacts=found, labels=STATUS_LABELS,
                            candidates=await _candidates(request, services, found), values=values or {},
                            refusal=refusal)

    @post("/admin-contacts", opt={"roles": OPERATOR}, status_code=303)
    async def register(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        """仮登録: the address gets its 本登録依頼 mail with a link valid for 7 days."""
        values = await form_of(request)
        try:
            added = await operate_form(AdminContactsController.register, request, services, AdminContactIn, values)
        except Refused as refused:
            return await self._contacts_page(request, services, values, refused.refusal)
        tell(request, f"{added.email} を仮登録し、本登録依頼メールを送信しました。")
        return see_other(CONTACTS)

    @post("/admin-contacts/{contact_id:str}/resend", opt={"roles": OPERATOR}, status_code=303)
    async def resend(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     contact_id: FromPath[str]) -> Redirect:
        return await act(AdminContactsController.resend, request, services, contact_id=contact_id, back=CONTACTS,
                         done=lambda sent: f"{sent.email} に本登録依頼メールを再送しました"
                                           "（前のメールのURLは使えなくなりました）。")

    @get("/admin-contacts/{contact_id:str}/remove", opt={"roles": OPERATOR})
    async def remove_form(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                          contact_id: FromPath[str]) -> Template:
        found = await operate(AdminContactsController.index, request, services)
        email = next((c.email for c in found if c.contact_id == contact_id), "この通知先")
        return confirm_page(request, "通知先アドレスの削除",
                            f"{email} を削除します。掲載情報更新通知メールは届かなくなります。",
                            f"{CONTACTS}/{contact_id}/remove", "削除する", CONTACTS)

    @post("/admin-contacts/{contact_id:str}/remove", opt={"roles": OPERATOR}, status_code=303)
    async def remove(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     contact_id: FromPath[str]) -> Redirect:
        return await act(AdminContactsController.remove, request, services, contact_id=contact_id, back=CONTACTS,
                         done="通知先アドレスを削除しました。")

    # -- 掲載情報の更新 -----------------------------------------------------------------------------------
    @get("/info-site", opt={"roles": OPERATOR})
    async def site(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await self._site_page(request, services)

    async def _site_page(self, request: Request[Any, Any, Any], services: Services,
                         values: dict[str, str] | None = None, refusal: Refusal | None = None) -> Template:
        found = await operate(AdminContactsController.index, request, services)
        return console_page("operator_info_site.html", request, values=values or {}, refusal=refusal,
                            active=sum(1 for c in found if c.status == "active"),
                            provisional=sum(1 for c in found if c.status != "active"))

    @post("/info-site", opt={"roles": OPERATOR}, status_code=200)
    async def post_update(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                          ) -> Template | Redirect:
        """The first post says who will be mailed (or that no one will); the second posts the update."""
        values = await form_of(request)
        body = {"title": values.get("title", ""), "url": values.get("url", "").strip(),
                "noNotice": values.get("noNotice") == "on"}
        try:
            update = body_of(body, SiteUpdateIn)
            if values.get("confirmed") != "yes":
                found = await operate(AdminContactsController.index, request, services)
                active = sum(1 for c in found if c.status == "active")
                mail = ("掲載情報更新通知メールは送信しません。" if update.no_notice else
                        f"本登録済みの通知先 {active} 件に掲載情報更新通知メールを送信します。")
                return confirm_page(request, "掲載情報の更新",
                                    f"「{update.title}」（{update.url}）を掲載します。{mail}", SITE, "掲載する", SITE,
                                    hidden=values | {"confirmed": "yes"})
            posted = await operate(InfoSiteController.post_update, request, services, update)
        except Refused as refused:
            return await self._site_page(request, services, values, refused.refusal)
        tell(request, "掲載情報を更新しました（通知メールは送信していません）。" if posted.no_notice else
             f"掲載情報を更新し、通知メールを {posted.notified} 件送信しました。")
        return see_other(SITE)
