"""認証情報登録 (seed 5-1 ⑤) of B2B IDs: the mailed one-time URL and one-time password → a password → login.

The hosted page ``/registration/{token}`` calls the two public routes; operators and support re-issue the
two mails. Every answer comes from lifecycle, which keeps the URL token and the password only as hashes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import PUBLIC, SESSIONS, current_caller, request_id, settings_of
from kagi_gateway.services import Services
from kagi_shared.jst import jp_deadline

STAFF = ("operator", "support")
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class EnrolmentCheckIn(Dto):
    token: Token


class EnrolmentCompleteIn(Dto):
    token: Token
    one_time_password: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
    """Checked against the active password policy profile; the ID is the one the URL was mailed for."""
    secret_question: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    secret_answer: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None


class EnrolmentOut(Dto):
    login_id: str
    expires_at: datetime
    expires_at_text: str


class EnrolledOut(Dto):
    account_id: str
    login_id: str
    status: str
    login_url: str
    message: str


class EnrolmentIssuedOut(Dto):
    account_id: str
    login_id: str
    expires_at: datetime
    message: str


class EnrolmentController(Controller):
    path = "/api/v1"
    tags = ("enrolment",)

    @post("/auth/enrolments/check", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Whether a mailed enrolment URL can still be used, and for which ID")
    async def check(self, data: JSONBody[EnrolmentCheckIn], services: NamedDependency[Services],
                    request: Request[Any, Any, Any]) -> EnrolmentOut:
        reply = await services.call("lifecycle", "POST", "/internal/enrolments/check", json={"token": data.token},
                                    request_id=request_id(request))
        expires = msgspec.convert(reply["expiresAt"], datetime)
        return EnrolmentOut(login_id=reply["loginId"], expires_at=expires, expires_at_text=jp_deadline(expires))

    @post("/auth/enrolments/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Enrol with the URL's token and the mailed one-time password: set a password, the ID becomes active")
    async def complete(self, data: JSONBody[EnrolmentCompleteIn], services: NamedDependency[Services],
                       request: Request[Any, Any, Any]) -> EnrolledOut:
        body: dict[str, Any] = {"token": data.token, "oneTimePassword": data.one_time_password,
                                "password": data.password}
        if data.secret_question is not None:
            body["secretQuestion"] = data.secret_question
        if data.secret_answer is not None:
            body["secretAnswer"] = data.secret_answer
        reply = await services.call("lifecycle", "POST", "/internal/enrolments/complete", json=body,
                                    request_id=request_id(request))
        portal = settings_of(request).brand.portal_url.rstrip("/")
        return EnrolledOut(account_id=reply["accountId"], login_id=reply["loginId"], status=reply["status"],
                           login_url=f"{portal}/login",
                           message="認証情報の登録が完了しました。ID と登録したパスワードでログインしてください。")

    @post("/operator/accounts/{account_id:str}/enrolment", opt={"roles": STAFF}, status_code=201,
          summary="Re-issue both enrolment mails (the previous URL and one-time password stop working)")
    async def reissue(self, account_id: FromPath[str], services: NamedDependency[Services],
                      request: Request[Any, Any, Any]) -> EnrolmentIssuedOut:
        reply = await services.call("lifecycle", "POST", f"/internal/accounts/{account_id}/enrolment",
                                    caller=current_caller(request), request_id=request_id(request))
        SESSIONS.forget(account_id)
        return EnrolmentIssuedOut(account_id=reply["accountId"], login_id=reply["loginId"],
                                  expires_at=msgspec.convert(reply["expiresAt"], datetime),
                                  message="認証情報登録のメール2通を再発行しました。")
