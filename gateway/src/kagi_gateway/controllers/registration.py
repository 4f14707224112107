"""Self-registration with email verification (water portal): address → mailed link → password → account."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import post
from litestar.di import NamedDependency
from litestar.params import JSONBody

from kagi_gateway.deps import PUBLIC, Call, portal_url
from kagi_gateway.forward import ApiController, forward
from kagi_gateway.schemas import Dto
from kagi_shared.contracts.lifecycle import LifecycleClient, RegistrationCompleteIn, RegistrationTokenIn
from kagi_shared.jst import jp_deadline

Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class RegistrationIn(Dto):
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]


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


class RegistrationController(ApiController):
    path = "/api/v1/auth/registrations"
    tags = ("registration",)

    request_link = forward(
        post("/", opt={"roles": PUBLIC, "idempotent": True}, status_code=202,
             summary="Mail an email-verification link (the same answer whether or not the address has an account)"),
        LifecycleClient.request_registration, RegistrationIn)

    @post("/check", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Whether a verification link can still be used, and for which address")
    async def check(self, data: JSONBody[RegistrationTokenIn], call: NamedDependency[Call]) -> RegistrationLinkOut:
        link = await call.lifecycle.check_registration(data, rid=call.rid)
        return RegistrationLinkOut(email=link.email, expires_at=link.expires_at,
                                   expires_at_text=jp_deadline(link.expires_at))

    @post("/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=201,
          summary="Create the account with the verified address as its ID and a password (the link is spent)")
    async def complete(self, data: JSONBody[RegistrationCompleteIn], call: NamedDependency[Call]) -> RegisteredOut:
        account = await call.lifecycle.complete_registration(data, rid=call.rid)
        return RegisteredOut(account_id=account.account_id, login_id=account.login_id,
                             login_url=portal_url(call.settings, "/login"),
                             next_steps=NEXT_STEPS,
                             message="メールアドレスの登録が完了しました。ログインして利用登録を続けてください。")
