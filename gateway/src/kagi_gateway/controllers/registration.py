"""Self-registration with email verification (water portal): address → mailed link → password → account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kagi_gateway.deps import PUBLIC, client_ip, request_id, settings_of
from kagi_gateway.schemas import AcceptedOut
from kagi_gateway.services import Services
from kagi_shared.jst import jp_deadline

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class RegistrationIn(Dto):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


class RegistrationTokenIn(Dto):
    token: Token


class RegistrationCompleteIn(Dto):
    token: Token
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    """Checked against the lifecycle password policy; the ID is the verified address."""


class RegistrationLinkOut(Dto):
    email: str
    expires_at: datetime
    expires_at_text: str


class RegisteredOut(Dto):
    account_id: str
    login_id: str
    login_url: str
    next_steps: list[str]
    message: str


NEXT_STEPS = ["契約情報登録 (POST /api/v1/me/contracts)", "SMS認証 (POST /api/v1/me/registration/sms)"]


class RegistrationController(Controller):
    path = "/api/v1/auth/registrations"
    tags = ("registration",)

    @post("/", opt={"roles": PUBLIC}, status_code=202,
          summary="Mail an email-verification link (the same answer whether or not the address has an account)")
    async def request_link(self, data: JSONBody[RegistrationIn], services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> AcceptedOut:
        reply = await services.call("lifecycle", "POST", "/internal/registrations",
                                    json={"email": data.email, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, AcceptedOut)

    @post("/check", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Whether a verification link can still be used, and for which address")
    async def check(self, data: JSONBody[RegistrationTokenIn], services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> RegistrationLinkOut:
        reply = await services.call("lifecycle", "POST", "/internal/registrations/check", json={"token": data.token},
                                    request_id=request_id(request))
        expires = msgspec.convert(reply["expiresAt"], datetime)
        return RegistrationLinkOut(email=reply["email"], expires_at=expires, expires_at_text=jp_deadline(expires))

    @post("/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=201,
          summary="Create the account with the verified address as its ID and a password (the link is spent)")
    async def complete(self, data: JSONBody[RegistrationCompleteIn], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> RegisteredOut:
        reply = await services.call("lifecycle", "POST", "/internal/registrations/complete",
                                    json={"token": data.token, "password": data.password},
                                    request_id=request_id(request))
        portal = settings_of(request).brand.portal_url.rstrip("/")
        return RegisteredOut(account_id=reply["accountId"], login_id=reply["loginId"], login_url=f"{portal}/login",
                             next_steps=NEXT_STEPS,
                             message="メールアドレスの登録が完了しました。ログインして利用登録を続けてください。")
