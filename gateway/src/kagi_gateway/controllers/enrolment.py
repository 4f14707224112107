"""認証情報登録 (seed 5-1 ⑤) of B2B IDs: the mailed one-time URL and one-time password → a password → login.

The hosted page ``/registration/{token}`` calls the two public routes; operators and support re-issue the
two mails. Every answer comes from lifecycle, which keeps the URL token and the password only as hashes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec
from litestar import Controller, post
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody

from kagi_gateway.deps import PUBLIC, SESSIONS, Call, portal_url
from kagi_gateway.schemas import Dto
from kagi_shared.contracts.lifecycle import EnrolmentCheckIn, EnrolmentCompleteIn
from kagi_shared.jst import jp_deadline

STAFF = ("operator", "support")
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]


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
    async def check(self, data: JSONBody[EnrolmentCheckIn], call: NamedDependency[Call]) -> EnrolmentOut:
        link = await call.lifecycle.check_enrolment(data, rid=call.rid)
        return EnrolmentOut(login_id=link.login_id, expires_at=link.expires_at,
                            expires_at_text=jp_deadline(link.expires_at))

    @post("/auth/enrolments/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Enrol with the URL's token and the mailed one-time password: set a password, the ID becomes active")
    async def complete(self, data: JSONBody[EnrolmentCompleteIn], call: NamedDependency[Call]) -> EnrolledOut:
        account = await call.lifecycle.complete_enrolment(data, rid=call.rid)
        return EnrolledOut(account_id=account.account_id, login_id=account.login_id, status=account.status,
                           login_url=portal_url(call.settings, "/login"),
                           message="認証情報の登録が完了しました。ID と登録したパスワードでログインしてください。")

    @post("/operator/accounts/{account_id:str}/enrolment", opt={"roles": STAFF}, status_code=201,
          summary="Re-issue both enrolment mails (the previous URL and one-time password stop working)")
    async def reissue(self, account_id: FromPath[str], call: NamedDependency[Call]) -> EnrolmentIssuedOut:
        issued = await call.lifecycle.reissue_enrolment(call.caller, account_id, rid=call.rid)
        SESSIONS.forget(account_id)
        return EnrolmentIssuedOut(account_id=issued.account_id, login_id=issued.login_id, expires_at=issued.expires_at,
                                  message="認証情報登録のメール2通を再発行しました。")
