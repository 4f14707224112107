"""Account lifecycle: password change and reset, unlock requests, the operator's lock and ladder preview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from litestar import get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from kagi_gateway.controllers.step_up import STEP_UP
from kagi_gateway.deps import ANY_USER, PUBLIC, SESSIONS, Call
from kagi_gateway.forward import ApiController, forward
from kagi_gateway.schemas import Dto
from kagi_shared.contracts import lifecycle
from kagi_shared.contracts.lifecycle import (
    LifecycleClient,
    PasswordChangeIn,
    PreviewOut,
    SecretQuestionSetOut,
    UnlockRequestOut,
)

OPERATOR = ("operator",)
STAFF = ("operator", "support")
"""Unlock requests are support's duty too (the seed's troubleshooting table)."""
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
LoginId = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
Note = Annotated[str, msgspec.Meta(max_length=1000)]


class PasswordChangedOut(Dto):
    password_changed_at: datetime | None
    message: str


class ResetRequestIn(Dto):
    login_id: LoginId


class ResetCompleteIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    new_password: Password
    answer: Annotated[str, msgspec.Meta(
        min_length=1, max_length=200,
        description="the secret answer; required when the account has a question")] | None = None


Answer = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


class SecretQuestionIn(Dto):
    question: Annotated[str, msgspec.Meta(min_length=1, max_length=200,
                                          description="one of the fixed questions, or free text (≤ 100 characters)")]
    answer: Answer
    current_password: Annotated[str, msgspec.Meta(
        min_length=1, max_length=1024,
        description="the current password; without it a step-up of this session must be open")] | None = None


class QuestionIn(Dto):
    login_id: LoginId


class AnswerIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256, description="the mailed reset link's token")]
    answer: Answer
    new_password: Password


class UnlockFileIn(Dto):
    login_id: LoginId
    message: Note = ""


class LockedOut(Dto):
    account_id: str
    login_id: str
    status: str


class PasswordController(ApiController):
    path = "/api/v1"
    tags = ("password",)

    @post("/me/password", opt={"roles": ANY_USER, "password_change": True, "rate": "guess"}, status_code=200,
          summary="Change the caller's password (also with the restricted token of an expired password)")
    async def change(self, data: JSONBody[PasswordChangeIn], call: NamedDependency[Call]) -> PasswordChangedOut:
        caller = call.caller
        changed = await call.lifecycle.change_password(caller, data, rid=call.rid)
        SESSIONS.forget(caller.account_id)  # this token is stale now: refuse it at once, not after the cache
        return PasswordChangedOut(password_changed_at=changed.password_changed_at,
                                  message="パスワードを変更しました。新しいパスワードで再度ログインしてください。")

    request_reset = forward(post("/auth/password-reset", opt={"roles": PUBLIC, "idempotent": True}, status_code=202,
                                 summary="Mail a single-use reset link (same answer whether or not the ID exists)"),
                            LifecycleClient.request_reset, ResetRequestIn)

    complete_reset = forward(
        post("/auth/password-reset/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
             summary="Set a new password with the emailed link's token (and the secret answer if the account has one)"),
        LifecycleClient.complete_reset, ResetCompleteIn)

    @put("/me/secret-question", opt={"roles": ANY_USER, "rate": "guess"}, status_code=200,
         summary="Register the caller's secret question and answer (needs the current password or a step-up of "
                 "this session; mailed to the account; ends its sessions)")
    async def set_secret_question(self, data: JSONBody[SecretQuestionIn],
                                  call: NamedDependency[Call]) -> SecretQuestionSetOut:
        caller = call.caller
        stepped_up = False
        if data.current_password is None and any(caller.has(r) for r in STEP_UP):
            stepped_up = (await call.invite.step_up(caller, rid=call.rid)).verified
        registered = await call.lifecycle.set_secret_question(
            caller, lifecycle.SecretQuestionIn(question=data.question, answer=data.answer,
                                               current_password=data.current_password, stepped_up=stepped_up),
            rid=call.rid)
        SESSIONS.forget(caller.account_id)  # every session of the account ended: refuse this token at once
        return registered

    reset_question = forward(
        post("/auth/password-reset/question", opt={"roles": PUBLIC}, status_code=200,
             summary="The ID's secret question (an ID without one gets a decoy: existence never shows)"),
        LifecycleClient.reset_question, QuestionIn)

    reset_answer = forward(
        post("/auth/password-reset/answer", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
             summary="Set a new password with the mailed link's token and the secret answer (5 wrong answers lock)"),
        LifecycleClient.reset_answer, AnswerIn)

    file_unlock = forward(
        post("/auth/unlock-requests", opt={"roles": PUBLIC, "idempotent": True}, status_code=202,
             summary="Ask for a locked ID to be unlocked (the answer never reveals whether the ID exists)"),
        LifecycleClient.file_unlock, UnlockFileIn)


class LifecycleOperatorController(ApiController):
    path = "/api/v1/operator"
    tags = ("operator",)

    @get("/unlock-requests", opt={"roles": STAFF}, summary="Unlock requests, newest first")
    async def unlock_requests(
        self, call: NamedDependency[Call],
        status: Annotated[Literal["pending", "approved", "rejected", "refused"] | None, Parameter()] = None,
    ) -> list[UnlockRequestOut]:
        return await call.lifecycle.unlock_requests(call.caller, status, rid=call.rid)

    approve = forward(post("/unlock-requests/{unlock_id:str}/approve", opt={"roles": STAFF}, status_code=200,
                           summary="Unlock the account (refused on or after its purge date)"),
                      LifecycleClient.approve_unlock)

    reject = forward(post("/unlock-requests/{unlock_id:str}/reject", opt={"roles": STAFF}, status_code=200,
                          summary="Reject an unlock request"), LifecycleClient.reject_unlock)

    @post("/accounts/{account_id:str}/lock", opt={"roles": OPERATOR}, status_code=200,
          summary="Lock an account (reason operator); its sessions end")
    async def lock(self, account_id: FromPath[str], call: NamedDependency[Call]) -> LockedOut:
        locked = await call.lifecycle.lock(call.caller, account_id, rid=call.rid)
        SESSIONS.forget(account_id)
        return LockedOut(account_id=locked.account_id, login_id=locked.login_id, status=locked.status)

    @get("/lifecycle/preview", opt={"roles": OPERATOR},
         summary="Who the next inactivity sweep would warn, lock or purge")
    async def preview(
        self, call: NamedDependency[Call],
        as_of: Annotated[str | None, QueryParameter(name="asOf", max_length=40,
                                               description="moment of the sweep; default the next 07:00 JST")] = None,
    ) -> PreviewOut:
        return await call.lifecycle.preview(call.caller, as_of, rid=call.rid)
