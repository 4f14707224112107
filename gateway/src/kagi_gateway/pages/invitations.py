"""招待の受諾: the mailed link → 認証キー入力 → ご利用になるIDをお選びください → 登録完了.

The key and the chosen ID go to invite's redemption in one call; the key typed on the first screen waits in the page
session until then, so a wrong key is reported when the ID is chosen and the person is sent back to the key screen
with the remaining tries. Choosing 「LINEでログイン」 instead goes through the provider's login first: its callback
redeems with the verified external ID (``redeem_with_external``).
"""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.invitations import (
    InvitationController,
    InvitationRequestIn,
    LinkCheckIn,
    RedeemIn,
    redeem_with_external_id,
)
from kagi_gateway.deps import PUBLIC, settings_of
from kagi_gateway.pages import forms
from kagi_gateway.pages.account import external_buttons
from kagi_gateway.pages.rules import password_rules
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import ForwardedProblem, Services
from kagi_shared.contracts.invite import RedeemedOut
from kagi_shared.jst import jp_deadline
from kagi_shared.problems import Problem

Token = Annotated[str | None, QueryParameter(name="token", max_length=256, required=False)]
LINK_PAGES = {
    "invitation.link_expired": "確認用URLの有効期限切れ",
    "invitation.link_used": "確認用URLは使用済みです",
    "invitation.link_voided": "確認用URLは無効になりました",
    "invitation.link_invalid": "確認用URLが正しくありません",
}
NO_FLOW = forms.Refusal(400, "page.flow_expired", "画面の有効期限が切れました。メールのURLからもう一度開いてください。")


def link_page(request: Request[Any, Any, Any], refusal: forms.Refusal) -> Template:
    title = LINK_PAGES.get(refusal.code, "利用者の登録")
    return forms.message_page(request, title, refusal.message, refusal.status, refusal.code)


def key_page(request: Request[Any, Any, Any], flow: dict[str, Any], refusal: forms.Refusal | None = None) -> Template:
    remaining = refusal.extra.get("remainingAttempts") if refusal else None
    return forms.form_page("invitation_key.html", request, refusal, email=flow["email"], token=flow["token"],
                           remaining=remaining, max_wrong=settings_of(request).invite.link_max_wrong_keys)


def choose_page(request: Request[Any, Any, Any], flow: dict[str, Any], refusal: forms.Refusal | None = None,
                values: dict[str, str] | None = None) -> Template:
    return forms.form_page("invitation_choose.html", request, refusal, values, email=flow["email"],
                           rules=password_rules(settings_of(request)), external=external_buttons(settings_of(request)))


def redeem_refused(request: Request[Any, Any, Any], flow: dict[str, Any], refusal: forms.Refusal,
                   values: dict[str, str] | None = None) -> Template:
    """Where a refused redemption sends the person: a dead link to its page, a wrong key back to the key screen,
    an invitation refusal to a message, anything about the chosen ID back to the choice."""
    code = refusal.code
    if code in LINK_PAGES:
        page_session(request).data.pop("invitation", None)
        return link_page(request, refusal)
    if code == "invitation.key_wrong" or "key" in refusal.fields:
        flow.pop("key", None)
        if code == "invitation.key_wrong":
            refusal.fields["key"] = refusal.message
        return key_page(request, flow, refusal)
    if code.startswith("invitation."):
        return forms.message_page(request, "利用者の登録", refusal.message, refusal.status, code)
    return choose_page(request, flow, refusal, values)


def done_page(request: Request[Any, Any, Any], done: RedeemedOut, via: str | None = None) -> Template:
    page_session(request).data.pop("invitation", None)
    return forms.form_page("invitation_done.html", request, login_id=done.login_id, owner=done.owner_login_id,
                           new_account=done.new_account, login_url=done.login_url, via=via)


async def redeem_with_external(request: Request[Any, Any, Any], services: Services, provider_id: str,
                               subject: str) -> Template:
    """The provider's callback with a verified external ID, for the invitation waiting in the page session."""
    from kagi_gateway.federation import providers  # federation imports the pages package

    flow = page_session(request).get("invitation")
    if not flow or "key" not in flow:
        return forms.message_page(request, "利用者の登録", NO_FLOW.message, NO_FLOW.status, NO_FLOW.code)
    try:
        done = await redeem_with_external_id(services, request, flow["token"], flow["key"], provider_id, subject)
    except (Problem, ForwardedProblem) as exc:
        return redeem_refused(request, flow, forms.refusal_of(exc))
    return done_page(request, done, providers(settings_of(request))[provider_id].display_name)


class InvitationPages(Controller):
    path = "/invitations"
    include_in_schema = False

    # -- 招待コードをお持ちの方: the address the confirmation link goes to ---------------------------------------
    @get("/", opt={"roles": PUBLIC})
    async def request_form(self, request: Request[Any, Any, Any]) -> Template:
        return forms.form_page("invitation_request.html", request)

    @post("/", opt={"roles": PUBLIC}, status_code=200)
    async def request_link(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        sent = await forms.submit(InvitationController.request_link, request, services, InvitationRequestIn,
                                  again="invitation_request.html")
        return forms.message_page(request, "メールアドレス確認", f"{sent.sent_to} に確認用URLを送信しました。"
                                  f"{jp_deadline(sent.link_expires_at)}にメールのURLから手続きを続けてください。")

    async def _flow(self, request: Request[Any, Any, Any], services: Services, token: str) -> dict[str, Any]:
        """The link's state from the API (refused links raise), kept in the page session for the next screens."""
        checked = await forms.operate(InvitationController.check_link, request, services,
                                      forms.body_of({"token": token}, LinkCheckIn))
        flow = {"token": token, "email": checked.email}
        page_session(request).data["invitation"] = flow
        return flow

    @get("/accept", opt={"roles": PUBLIC, "rate": "guess"})
    async def open_link(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                        token: Token = None) -> Template:
        try:
            flow = await self._flow(request, services, token or "")
        except forms.Refused as refused:
            return link_page(request, refused.refusal)
        return key_page(request, flow)

    @post("/accept", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200)
    async def key(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        values = await forms.form_of(request)
        flow = page_session(request).get("invitation")
        if not flow or flow.get("token") != values.get("token"):
            try:
                flow = await self._flow(request, services, values.get("token", ""))
            except forms.Refused as refused:
                return link_page(request, refused.refusal)
        if not values.get("key"):
            return key_page(request, flow, forms.Refusal(400, "request.invalid", "入力内容に誤りがあります。",
                                                         {"key": "認証キーを入力してください。"}))
        flow["key"] = values["key"]
        return choose_page(request, flow)

    @post("/accept/redeem", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200)
    async def redeem(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        values = await forms.form_of(request)
        flow = page_session(request).get("invitation")
        if not flow or "key" not in flow:
            return forms.message_page(request, "利用者の登録", NO_FLOW.message, NO_FLOW.status, NO_FLOW.code)
        body = {"token": flow["token"], "key": flow["key"], "account": values.get("account", ""),
                "password": values.get("password", "")}
        if values.get("account") == "existing":
            body["loginId"] = values.get("loginId", "")
        try:
            done = await forms.operate(InvitationController.redeem, request, services, forms.body_of(body, RedeemIn))
        except forms.Refused as refused:
            return redeem_refused(request, flow, refused.refusal, values)
        return done_page(request, done)

    @get("/accept/external/{provider_id:str}", opt={"roles": PUBLIC, "rate": "guess"})
    async def external(self, request: Request[Any, Any, Any], provider_id: FromPath[str]) -> Template | Redirect:
        """「LINEでログイン」 on the choice: the provider's login, then its callback redeems the key."""
        from kagi_gateway.federation import start_with  # federation imports the pages package

        flow = page_session(request).get("invitation")
        if not flow or "key" not in flow:
            return forms.message_page(request, "利用者の登録", NO_FLOW.message, NO_FLOW.status, NO_FLOW.code)
        return await start_with(request, provider_id, "redeem", "/invitations/accept")
