"""Login and the caller's own account."""

from __future__ import annotations

import msgspec
from litestar import get, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kagi_gateway.deps import (
    ANY_USER,
    PUBLIC,
    TOTP_ENROLMENT_REQUIRED,
    Call,
)
from kagi_gateway.forward import ApiController, forward
from kagi_gateway.schemas import LoginIn, MeOut, TokenOut
from kagi_gateway.tokens import PASSWORD_CHANGE_SCOPE, TOTP_ENROLMENT_SCOPE, issue_token
from kagi_shared.contracts import lifecycle
from kagi_shared.contracts.lifecycle import (
    LifecycleClient,
    RefreshIn,
    SessionOpened,
)
from kagi_shared.contracts.permissions import PermissionsClient
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

BEARER = "Bearer"  # the OAuth 2.0 token type
PRIVILEGED = ("company_admin", "operator", "support")  # the roles that log in with TOTP (KAGI_SECURITY_TOTP_ROLES)


class AuthController(ApiController):
    path = "/api/v1"
    tags = ("auth",)

    @post("/auth/login", opt={"roles": PUBLIC, "rate": "login", "problems": (401,)}, status_code=200,
          summary="Log in with ID and password")
    async def login(self, data: JSONBody[LoginIn], call: NamedDependency[Call]) -> TokenOut:
        call.request.scope.setdefault("state", {})["login_attempt"] = data.login_id  # for the audit of a failure
        opened = await call.lifecycle.open_session(
            lifecycle.LoginIn(login_id=data.login_id, password=data.password, totp_code=data.totp_code),
            rid=call.rid)
        return _tokens(opened, call.settings)

    @post("/auth/refresh", opt={"roles": PUBLIC, "rate": "guess", "problems": (401,)}, status_code=200,
          summary="Exchange a refresh token (single use) for a new access and refresh token")
    async def refresh(self, data: JSONBody[RefreshIn], call: NamedDependency[Call]) -> TokenOut:
        opened = await call.lifecycle.refresh_session(data, rid=call.rid)
        return _tokens(opened, call.settings)

    logout = forward(
        post("/auth/logout", opt={"roles": ANY_USER, "password_change": True, "totp_enrolment": True}, status_code=204,
             summary="End the session: the refresh token and every access token of the account stop working"),
        LifecycleClient.logout, ends_sessions=True)

    totp_setup = forward(
        post("/me/totp", opt={"roles": PRIVILEGED, "totp_enrolment": True}, status_code=201,
             summary="Start the TOTP second factor: a new seed for the authenticator app (operators, company admins)"),
        LifecycleClient.totp_setup)

    totp_confirm = forward(
        post("/me/totp/confirm", opt={"roles": PRIVILEGED, "totp_enrolment": True, "rate": "guess"}, status_code=204,
             summary="Confirm the seed with the app's first code; the sessions end and the next login asks for a code"),
        LifecycleClient.totp_confirm, ends_sessions=True)

    my_permissions = forward(
        get("/me/permissions", opt={"roles": ANY_USER},
            summary="The caller's current permission per target system (PMS: the permission-management right)"),
        PermissionsClient.my_permissions)

    @get("/me", opt={"roles": ANY_USER}, summary="The caller's account")
    async def me(self, call: NamedDependency[Call]) -> MeOut:
        caller = call.caller
        account = await call.lifecycle.account(caller.account_id, caller=caller, rid=call.rid)
        return MeOut(**msgspec.structs.asdict(account))


def _tokens(opened: SessionOpened, settings: Settings) -> TokenOut:
    """Access token (and the refresh token lifecycle opened) for a login or a refresh."""
    account = opened.account
    caller = Caller(account_id=account.account_id, login_id=account.login_id, email=account.email,
                    roles=tuple(account.roles), session_id=opened.session_id)
    session_version = account.session_version
    if account.totp_enrolment_required:
        # A privileged role without its second factor yet: a token that opens only the enrolment.
        token, expires = issue_token(caller, settings.security, session_version=session_version,
                                     scope=TOTP_ENROLMENT_SCOPE)
        raise Problem(403, *TOTP_ENROLMENT_REQUIRED,
                      extra={"accessToken": token, "tokenType": BEARER, "expiresAt": expires.isoformat(),
                             "enrolUrl": "/api/v1/me/totp"})
    if account.password_change_required:
        # Expired password (SPEC §4): a token that opens only the password change endpoint.
        token, expires = issue_token(caller, settings.security, session_version=session_version,
                                     scope=PASSWORD_CHANGE_SCOPE)
        raise Problem(403, "auth.password_change_required",
                      "パスワードの有効期限が切れています。パスワードを変更してください。",
                      extra={"accessToken": token, "tokenType": BEARER, "expiresAt": expires.isoformat(),
                             "changePasswordUrl": "/api/v1/me/password"})
    token, expires = issue_token(caller, settings.security, session_version=session_version)
    return TokenOut(access_token=token, token_type=BEARER, expires_at=expires, roles=list(caller.roles),
                    refresh_token=opened.refresh_token, refresh_expires_at=opened.refresh_expires_at)
