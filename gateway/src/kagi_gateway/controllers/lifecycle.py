"""Account lifecycle: password change and reset, unlock requests, the operator's lock and ladder preview."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.di import NamedDependency
from litestar.params import FromPath, JSONBody, Parameter, QueryParameter

from kagi_gateway.controllers.step_up import STEP_UP
from kagi_gateway.deps import ANY_USER, PUBLIC, SESSIONS, client_ip, current_caller, request_id
from kagi_gateway.schemas import AcceptedOut
from kagi_gateway.services import Services

OPERATOR = ("operator",)
STAFF = ("operator", "support")
"""Unlock requests are support's duty too (the seed's troubleshooting table)."""
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
LoginId = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
Note = Annotated[str, msgspec.Meta(max_length=1000)]


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class PasswordChangeIn(Dto):
    current_password: Password
    new_password: Password


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


class SecretQuestionSetOut(Dto):
    question: str
    message: str


class QuestionIn(Dto):
    login_id: LoginId


class QuestionOut(Dto):
    login_id: str
    question: str


class AnswerIn(Dto):
    token: Annotated[str, msgspec.Meta(min_length=1, max_length=256, description="the mailed reset link's token")]
    answer: Answer
    new_password: Password


class UnlockFileIn(Dto):
    login_id: LoginId
    message: Note = ""


class UnlockDecisionIn(Dto):
    note: Note | None = None


class UnlockRequestOut(Dto):
    request_id: str
    account_id: str
    login_id: str
    status: str
    lock_reason: str | None
    message: str
    filed_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    note: str | None
    purge_date: str | None


class LockedOut(Dto):
    account_id: str
    login_id: str
    status: str


class PreviewRowOut(Dto):
    account_id: str
    login_id: str
    email: str
    status: str
    stage: str
    base_date: str
    stage_date: str


class PreviewOut(Dto):
    as_of: datetime
    warning1: list[PreviewRowOut]
    warning2: list[PreviewRowOut]
    lock: list[PreviewRowOut]
    purge: list[PreviewRowOut]


class PasswordController(Controller):
    path = "/api/v1"
    tags = ("password",)

    @post("/me/password", opt={"roles": ANY_USER, "password_change": True, "rate": "guess"}, status_code=200,
          summary="Change the caller's password (also with the restricted token of an expired password)")
    async def change(self, data: JSONBody[PasswordChangeIn], services: NamedDependency[Services],
                     request: Request[Any, Any, Any]) -> PasswordChangedOut:
        caller = current_caller(request)
        reply = await services.call("lifecycle", "POST", "/internal/me/password", caller=caller,
                                    json={"currentPassword": data.current_password, "newPassword": data.new_password},
                                    request_id=request_id(request))
        SESSIONS.forget(caller.account_id)  # this token is stale now: refuse it at once, not after the cache
        changed_at = msgspec.convert(reply.get("passwordChangedAt"), datetime | None, strict=False)
        return PasswordChangedOut(password_changed_at=changed_at,
                                  message="パスワードを変更しました。新しいパスワードで再度ログインしてください。")

    @post("/auth/password-reset", opt={"roles": PUBLIC}, status_code=202,
          summary="Mail a single-use reset link (same answer whether or not the ID exists)")
    async def request_reset(self, data: JSONBody[ResetRequestIn], services: NamedDependency[Services],
                            request: Request[Any, Any, Any]) -> AcceptedOut:
        reply = await services.call("lifecycle", "POST", "/internal/password-reset",
                                    json={"loginId": data.login_id, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, AcceptedOut)

    @post("/auth/password-reset/complete", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Set a new password with the emailed link's token (and the secret answer if the account has one)")
    async def complete_reset(self, data: JSONBody[ResetCompleteIn], services: NamedDependency[Services],
                             request: Request[Any, Any, Any]) -> AcceptedOut:
        reply = await services.call("lifecycle", "POST", "/internal/password-reset/complete",
                                    json={"token": data.token, "newPassword": data.new_password,
                                          "answer": data.answer, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, AcceptedOut)

    @put("/me/secret-question", opt={"roles": ANY_USER, "rate": "guess"}, status_code=200,
         summary="Register the caller's secret question and answer (needs the current password or a step-up of "
                 "this session; mailed to the account; ends its sessions)")
    async def set_secret_question(self, data: JSONBody[SecretQuestionIn], services: NamedDependency[Services],
                                  request: Request[Any, Any, Any]) -> SecretQuestionSetOut:
        caller = current_caller(request)
        stepped_up = False
        if data.current_password is None and any(caller.has(r) for r in STEP_UP):
            window = await services.call("invite", "GET", "/internal/step-up", caller=caller,
                                         request_id=request_id(request))
            stepped_up = bool(window.get("verified"))
        reply = await services.call("lifecycle", "PUT", "/internal/me/secret-question", caller=caller,
                                    json={"question": data.question, "answer": data.answer,
                                          "currentPassword": data.current_password, "steppedUp": stepped_up},
                                    request_id=request_id(request))
        SESSIONS.forget(caller.account_id)  # every session of the account ended: refuse this token at once
        return msgspec.convert(reply, SecretQuestionSetOut)

    @post("/auth/password-reset/question", opt={"roles": PUBLIC}, status_code=200,
          summary="The ID's secret question (an ID without one gets a decoy: existence never shows)")
    async def reset_question(self, data: JSONBody[QuestionIn], services: NamedDependency[Services],
                             request: Request[Any, Any, Any]) -> QuestionOut:
        reply = await services.call("lifecycle", "POST", "/internal/password-reset/question",
                                    json={"loginId": data.login_id, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, QuestionOut)

    @post("/auth/password-reset/answer", opt={"roles": PUBLIC, "rate": "guess"}, status_code=200,
          summary="Set a new password with the mailed link's token and the secret answer (5 wrong answers lock)")
    async def reset_answer(self, data: JSONBody[AnswerIn], services: NamedDependency[Services],
                           request: Request[Any, Any, Any]) -> AcceptedOut:
        reply = await services.call("lifecycle", "POST", "/internal/password-reset/answer",
                                    json={"token": data.token, "answer": data.answer,
                                          "newPassword": data.new_password, "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, AcceptedOut)

    @post("/auth/unlock-requests", opt={"roles": PUBLIC}, status_code=202,
          summary="Ask for a locked ID to be unlocked (the answer never reveals whether the ID exists)")
    async def file_unlock(self, data: JSONBody[UnlockFileIn], services: NamedDependency[Services],
                          request: Request[Any, Any, Any]) -> AcceptedOut:
        reply = await services.call("lifecycle", "POST", "/internal/unlock-requests",
                                    json={"loginId": data.login_id, "message": data.message,
                                          "clientIp": client_ip(request)},
                                    request_id=request_id(request))
        return msgspec.convert(reply, AcceptedOut)


class LifecycleOperatorController(Controller):
    path = "/api/v1/operator"
    tags = ("operator",)

    @get("/unlock-requests", opt={"roles": STAFF}, summary="Unlock requests, newest first")
    async def unlock_requests(
        self, services: NamedDependency[Services], request: Request[Any, Any, Any],
        status: Annotated[Literal["pending", "approved", "rejected", "refused"] | None, Parameter()] = None,
    ) -> list[UnlockRequestOut]:
        reply = await services.call("lifecycle", "GET", "/internal/unlock-requests", caller=current_caller(request),
                                    params={"status": status} if status else None, request_id=request_id(request))
        return msgspec.convert(reply, list[UnlockRequestOut])

    @post("/unlock-requests/{unlock_id:str}/approve", opt={"roles": STAFF}, status_code=200,
          summary="Unlock the account (refused on or after its purge date)")
    async def approve(self, unlock_id: FromPath[str], data: JSONBody[UnlockDecisionIn],
                      services: NamedDependency[Services], request: Request[Any, Any, Any]) -> UnlockRequestOut:
        reply = await services.call("lifecycle", "POST", f"/internal/unlock-requests/{unlock_id}/approve",
                                    caller=current_caller(request), json={"note": data.note},
                                    request_id=request_id(request))
        return msgspec.convert(reply, UnlockRequestOut)

    @post("/unlock-requests/{unlock_id:str}/reject", opt={"roles": STAFF}, status_code=200,
          summary="Reject an unlock request")
    async def reject(self, unlock_id: FromPath[str], data: JSONBody[UnlockDecisionIn],
                     services: NamedDependency[Services], request: Request[Any, Any, Any]) -> UnlockRequestOut:
        reply = await services.call("lifecycle", "POST", f"/internal/unlock-requests/{unlock_id}/reject",
                                    caller=current_caller(request), json={"note": data.note},
                                    request_id=request_id(request))
        return msgspec.convert(reply, UnlockRequestOut)

    @post("/accounts/{account_id:str}/lock", opt={"roles": OPERATOR}, status_code=200,
          summary="Lock an account (reason operator); its sessions end")
    async def lock(self, account_id: FromPath[str], services: NamedDependency[Services],
                   request: Request[Any, Any, Any]) -> LockedOut:
        reply = await services.call("lifecycle", "POST", f"/internal/accounts/{account_id}/lock",
                                    caller=current_caller(request), request_id=request_id(request))
        SESSIONS.forget(account_id)
        return LockedOut(account_id=reply["accountId"], login_id=reply["loginId"], status=reply["status"])

    @get("/lifecycle/preview", opt={"roles": OPERATOR},
         summary="Who the next inactivity sweep would warn, lock or purge")
    async def preview(
        self, services: NamedDependency[Services], request: Request[Any, Any, Any],
        as_of: Annotated[str | None, QueryParameter(name="asOf", max_length=40,
                                               description="moment of the sweep; default the next 07:00 JST")] = None,
    ) -> PreviewOut:
        reply = await services.call("lifecycle", "GET", "/internal/lifecycle/preview", caller=current_caller(request),
                                    params={"asOf": as_of} if as_of else None, request_id=request_id(request))
        return msgspec.convert(reply, PreviewOut)
