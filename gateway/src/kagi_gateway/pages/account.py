"""ログイン, ログアウト, パスワード変更 (expired password) and パスワード再発行 pages."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Redirect, Template

from kagi_gateway.controllers.auth import AuthController
from kagi_gateway.controllers.lifecycle import PasswordController, ResetCompleteIn, ResetRequestIn
from kagi_gateway.deps import ANY_USER, PUBLIC, TOTP_ENROLMENT_REQUIRED, authorize, settings_of
from kagi_gateway.pages import forms
from kagi_gateway.pages.rules import password_rules
from kagi_gateway.pages.session import page_session
from kagi_gateway.provider import authorize_origin
from kagi_gateway.schemas import LoginIn
from kagi_gateway.services import Services
from kagi_shared.contracts.lifecycle import LogoutIn, PasswordChangeIn
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

HOME = "/account"
Token = Annotated[str | None, QueryParameter(name="token", max_length=256, required=False)]
Next = Annotated[str | None, QueryParameter(name="next", max_length=512, required=False)]


def local_path(target: str | None) -> str:
    """Only a path on this site is followed after login (never another host)."""
    if target and target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return HOME


async def sign_in(request: Request[Any, Any, Any], services: Services, login_id: str, password: str,
                  totp_code: str | None = None) -> None:
    """Log in through the API's login (the same rules, answers and token scopes) and keep the tokens in a fresh
    session; an expired password leaves only the restricted token, which opens just the change page."""
    session = page_session(request)
    try:
        tokens = await forms.operate(AuthController.login, request, services,
                                     forms.body_of({"loginId": login_id, "password": password, "totpCode": totp_code},
                                                   LoginIn))
    except forms.Refused as refused:
        if refused.refusal.code == "auth.password_change_required":
            session.rotate(accessToken=refused.refusal.extra["accessToken"], passwordChange=True)
        elif refused.refusal.code == TOTP_ENROLMENT_REQUIRED[0]:
            # A privileged role's first login: a token that opens only the enrolment page (pages/totp.py).
            session.rotate(accessToken=refused.refusal.extra["accessToken"], loginId=login_id)
        raise
    # authTime answers OpenID Connect's auth_time/max_age; reauthFor is the authorization request that asked for
    # this fresh login (kagi_gateway.provider).
    kept = {"reauthFor": session.get("reauthFor")} if session.get("reauthFor") else {}
    session.rotate(accessToken=tokens.access_token, refreshToken=tokens.refresh_token, loginId=login_id,
                   authTime=time.time(), **kept)


def external_buttons(settings: Settings) -> list[tuple[str, str]]:
    """(provider id, its button text) for the login page (「LINEでログイン」…), in the configured order."""
    from kagi_gateway.federation import providers

    return [(p.id, p.display_name) for p in providers(settings).values()]


def _allow_relying_party(request: Request[Any, Any, Any], target: str) -> None:
    """A login for an OpenID Connect authorization ends at the relying party's redirect URI; the authorization
    endpoint sends there only a URI registered for the client, so naming its origin in form-action opens nothing
    else (the page shows no content of anyone else's)."""
    origin = authorize_origin(target)
    if origin:
        request.scope.setdefault("state", {})["form_action"] = origin


class AccountPages(Controller):
    path = "/"
    include_in_schema = False

    @get("/login", opt={"roles": PUBLIC})
    async def login_form(self, request: Request[Any, Any, Any], next_path: Next = None) -> Template:
        _allow_relying_party(request, local_path(next_path))
        return forms.form_page("login.html", request, next_path=local_path(next_path),
                               external=external_buttons(settings_of(request)))

    @post("/login", opt={"roles": PUBLIC, "rate": "login"}, status_code=303)
    async def login(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        values = await forms.form_of(request)
        target = local_path(values.get("next"))
        _allow_relying_party(request, target)
        try:
            await sign_in(request, services, values.get("loginId", ""), values.get("password", ""),
                          values.get("totpCode"))
        except forms.Refused as refused:
            if refused.refusal.code == "auth.password_change_required":
                return forms.see_other("/password/change")
            if refused.refusal.code == TOTP_ENROLMENT_REQUIRED[0]:
                return forms.see_other("/totp")
            return forms.form_page("login.html", request, refused.refusal, values, next_path=target,
                                   external=external_buttons(settings_of(request)))
        return forms.see_other(target)

    @post("/logout", opt={"roles": PUBLIC}, status_code=303)
    async def logout(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """Ends the session at lifecycle too (every token of the account stops), then forgets it here."""
        session = page_session(request)
        token = session.get("accessToken")
        if token:
            try:
                await authorize(request, AuthController.logout, str(token))
                await forms.operate(AuthController.logout, request, services,
                                    LogoutIn(refresh_token=session.get("refreshToken")))
            except (Problem, forms.Refused):  # an already ended session is logged out all the same
                pass
        session.rotate()
        return forms.message_page(request, "ログアウト", "ログアウトしました。", links=[("/login", "ログイン画面へ")])

    @get("/account", opt={"roles": ANY_USER})
    async def home(self, request: Request[Any, Any, Any]) -> Template:
        return forms.page("account.html", request, login_id=page_session(request).get("loginId"))

    @get("/password/change", opt={"roles": ANY_USER, "password_change": True})
    async def change_form(self, request: Request[Any, Any, Any]) -> Template:
        return forms.form_page("password_change.html", request, rules=password_rules(settings_of(request)),
                               expired=bool(page_session(request).get("passwordChange")))

    @post("/password/change", opt={"roles": ANY_USER, "password_change": True}, status_code=200)
    async def change(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        done = await forms.submit(PasswordController.change, request, services, PasswordChangeIn,
                                  again="password_change.html", rules=password_rules(settings_of(request)),
                                  expired=bool(page_session(request).get("passwordChange")))
        page_session(request).rotate()  # the change ended every session of the account
        return forms.message_page(request, "パスワード変更完了", done.message, links=[("/login", "ログイン画面へ")])

    # -- パスワード再発行 --------------------------------------------------------------------------------
    @get("/password-reset", opt={"roles": PUBLIC})
    async def reset_form(self, request: Request[Any, Any, Any], services: NamedDependency[Services],
                         token: Token = None) -> Template:
        if token is None:
            return forms.form_page("password_reset_request.html", request)
        return forms.form_page("password_reset.html", request, token=token, rules=password_rules(settings_of(request)))

    @post("/password-reset", opt={"roles": PUBLIC, "rate": "login"}, status_code=200)
    async def request_reset(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        return await forms.submit_for_message(PasswordController.request_reset, request, services, ResetRequestIn,
                                              again="password_reset_request.html", title="パスワード再発行の受付")

    @post("/password-reset/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200)
    async def complete_reset(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        values = await forms.form_of(request)
        try:
            done = await forms.operate_form(PasswordController.complete_reset, request, services, ResetCompleteIn,
                                            values)
        except forms.Refused as refused:
            # An account with a secret question answers it too (the link alone sets no password then).
            question = refused.refusal.extra.get("question") or values.get("question")
            if ({"newPassword", "answer"} & set(refused.refusal.fields) or refused.refusal.code == "request.invalid"
                    or refused.refusal.code == "password_reset.answer_wrong"):
                return forms.form_page("password_reset.html", request, refused.refusal, values,
                                       token=values.get("token", ""), rules=password_rules(settings_of(request)),
                                       question=question)
            return forms.refusal_page(request, "パスワード再発行", refused.refusal,
                                      links=[("/password-reset", "パスワード再発行の受付へ")])
        return forms.message_page(request, "パスワード再発行完了", done.message, links=[("/login", "ログイン画面へ")])


def redirect_to_login(path: str) -> Redirect:
    return forms.see_other(f"/login?next={path}")
