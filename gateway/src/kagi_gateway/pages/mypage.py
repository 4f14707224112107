"""MyPage for the owner (invite-tokyogas-mypage.txt): 追加認証 → 招待コード発行 → 利用者一覧, and a co-user's
memberships. Every screen runs the JSON API's handlers (``operate``); invite decides whether the step-up window is
open, so a screen that needs it sends the owner to 追加認証 whenever invite says so."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, TypeVar

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath
from litestar.response import Redirect, Template

from kagi_gateway.controllers.invitations import InvitationController
from kagi_gateway.controllers.step_up import StepUpController
from kagi_gateway.deps import ANY_USER, settings_of
from kagi_gateway.pages.console import act, allow_copy_script, confirm_page, console_page, tell
from kagi_gateway.pages.forms import FormRefused, Refused, operate, operate_form, see_other
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import Services
from kagi_shared.contracts.invite import RepresentativeIn, StepUpVerifyIn

OWNER = ("owner",)
HOME = "/mypage"
STEP_UP_REQUIRED = "step_up.required"
SENT = "stepUpSentTo"
T = TypeVar("T")


def step_up_page(request: Request[Any, Any, Any], refused: Refused | None = None) -> Template:
    sent = page_session(request).get(SENT)
    remaining = refused.refusal.extra.get("remainingAttempts") if refused else None
    return console_page("mypage_step_up.html", request, refusal=refused.refusal if refused else None,
                        sent_to=sent["to"] if sent else None, code_expires_at=sent["expires"] if sent else None,
                        remaining=remaining, max_tries=settings_of(request).security.step_up_max_attempts)


async def stepped_up(request: Request[Any, Any, Any], operation: Awaitable[T]) -> T:
    """An operation invite runs only within a fresh 追加認証: refused for the want of one, the answer is the step-up
    page (raised for the pages router to show, as a form shown again is); any other refusal is raised as it came."""
    try:
        return await operation
    except Refused as refused:
        if refused.refusal.code == STEP_UP_REQUIRED:
            raise FormRefused(step_up_page(request, refused)) from None
        raise


class MyPagePages(Controller):
    path = HOME
    include_in_schema = False

    @get("/", opt={"roles": OWNER})
    async def home(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """追加認証 until invite says the window is open; then 招待コード発行 with the keys issued so far."""
        state = await operate(StepUpController.state, request, services)
        if not state.verified:
            return step_up_page(request)
        keys = await operate(InvitationController.keys, request, services)
        return console_page("mypage_home.html", request, valid_until=state.valid_until,
                            pending=[k for k in keys.items if k.status == "pending"],
                            others=[k for k in keys.items if k.status != "pending"])

    # -- 追加認証 ------------------------------------------------------------------------------------
    @post("/step-up", opt={"roles": OWNER}, status_code=200)
    async def issue_code(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        try:
            issued = await operate(StepUpController.issue, request, services)
        except Refused as refused:
            return step_up_page(request, refused)
        page_session(request).data[SENT] = {"to": issued.sent_to, "expires": issued.expires_at.isoformat()}
        return step_up_page(request)

    @post("/step-up/verify", opt={"roles": OWNER, "rate": "guess"}, status_code=200)
    async def verify(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        try:
            await operate_form(StepUpController.verify, request, services, StepUpVerifyIn)
        except Refused as refused:
            return step_up_page(request, refused)
        page_session(request).data.pop(SENT, None)
        tell(request, "追加認証が完了しました。")
        return see_other(HOME)

    # -- 招待コード発行 ------------------------------------------------------------------------------
    @post("/invitations", opt={"roles": OWNER}, status_code=200)
    async def issue_key(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        try:
            issued = await stepped_up(request, operate(InvitationController.issue, request, services))
        except Refused as refused:
            tell(request, refused.refusal.message, refused=True)
            return see_other(HOME)
        allow_copy_script(request)
        return console_page("mypage_key.html", request, issued=issued)

    @get("/invitations/{key_id:str}/revoke", opt={"roles": OWNER})
    async def revoke_confirm(self, request: Request[Any, Any, Any], key_id: FromPath[str]) -> Template:
        return confirm_page(request, "招待コードの取消",
                            "この招待コード（認証キー）を取り消します。取り消した認証キーは使えなくなります。よろしいですか。",
                            f"{HOME}/invitations/{key_id}/revoke", "取り消す", HOME)

    @post("/invitations/{key_id:str}/revoke", opt={"roles": OWNER}, status_code=303)
    async def revoke(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     key_id: FromPath[str]) -> Redirect:
        return await act(InvitationController.revoke, request, services, key_id=key_id, back=HOME,
                         done="招待コードを取り消しました。")

    # -- 利用者一覧 ----------------------------------------------------------------------------------
    @get("/users", opt={"roles": OWNER})
    async def users(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        listed = await stepped_up(request, operate(InvitationController.users, request, services))
        from kagi_gateway.federation import service_names  # federation imports the pages package

        return console_page("mypage_users.html", request, users=listed.items,
                            providers=service_names(settings_of(request)))

    @post("/users/representative", opt={"roles": OWNER}, status_code=303)
    async def representative(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        try:
            await stepped_up(request, operate_form(InvitationController.representative, request, services,
                                                   RepresentativeIn))
        except Refused as refused:
            tell(request, refused.refusal.fields.get("accountId") or refused.refusal.message, refused=True)
            return see_other(f"{HOME}/users")
        tell(request, "代表メールアドレスを変更しました。")
        return see_other(f"{HOME}/users")

    @get("/users/{account_id:str}/remove", opt={"roles": OWNER})
    async def remove_confirm(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                             account_id: FromPath[str]) -> Template | Redirect:
        listed = await operate(InvitationController.users, request, services)
        user = next((u for u in listed.items if u.account_id == account_id and not u.owner), None)
        if user is None:
            tell(request, "指定された利用者は見つかりません。", refused=True)
            return see_other(f"{HOME}/users")
        return confirm_page(request, "利用者の削除", f"{user.login_id}（{user.email}）を利用者から削除します。"
                            "削除するとこの方はすぐにご利用いただけなくなり、お二人にお知らせのメールが届きます。"
                            "よろしいですか。", f"{HOME}/users/{account_id}/remove", "削除する", f"{HOME}/users")

    @post("/users/{account_id:str}/remove", opt={"roles": OWNER}, status_code=303)
    async def remove(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                     account_id: FromPath[str]) -> Any:
        try:
            await stepped_up(request, operate(InvitationController.remove, request, services, account_id=account_id))
        except Refused as refused:
            tell(request, refused.refusal.message, refused=True)
            return see_other(f"{HOME}/users")
        tell(request, "利用者を削除しました。")
        return see_other(f"{HOME}/users")

    # -- a co-user: whose accounts they use -----------------------------------------------------------
    @get("/memberships", opt={"roles": ANY_USER})
    async def memberships(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        listed = await operate(InvitationController.memberships, request, services)
        return console_page("mypage_memberships.html", request, memberships=listed.items)

