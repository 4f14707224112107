"""Lifecycle's internal API: accounts, login, passwords, unlock requests, the ladder preview. Called by the gateway."""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar

import msgspec
from litestar import Request, get, post, put
from litestar.params import FromPath, FromQuery, JSONBody

from kagi_lifecycle.bootstrap import NAME, Lifecycle, bootstrap
from kagi_lifecycle.domain.accounts import Account
from kagi_lifecycle.domain.unlock import UnlockRequest
from kagi_lifecycle.entrypoints.federation_api import federation_handlers
from kagi_lifecycle.entrypoints.oidc_api import oidc_handlers
from kagi_lifecycle.service.sweep import parse_as_of
from kagi_shared.contracts.lifecycle import (
    AcceptedOut,
    AccountOut,
    AnswerIn,
    CreateAccountIn,
    EnrolmentCheckIn,
    EnrolmentCheckOut,
    EnrolmentCompleteIn,
    EnrolmentReissuedOut,
    LoginIn,
    LoginOut,
    LogoutIn,
    PasswordChangeIn,
    PreviewOut,
    PreviewRowOut,
    QuestionOut,
    QuestionRequestIn,
    RefreshIn,
    RegistrationCheckOut,
    RegistrationCompleteIn,
    RegistrationIn,
    RegistrationTokenIn,
    ResetCompleteIn,
    ResetRequestIn,
    SecretQuestionIn,
    SecretQuestionSetOut,
    SessionOpened,
    SessionOut,
    TotpConfirmIn,
    TotpSetupOut,
    UnlockDecisionIn,
    UnlockFileIn,
    UnlockRequestOut,
)
from kagi_shared.metrics import ACCOUNTS, on_scrape, set_counts
from kagi_shared.problems import FieldError, Problem
from kagi_shared.service_api import RunningService, ServiceApi, api_entrypoints, caller_as, caller_of, correlation_of
from kagi_shared.settings import Settings

RESET_ACCEPTED = "登録されている ID の場合、パスワード再設定用のリンクをメールで送信しました。"
REGISTRATION_ACCEPTED = ("ご入力いただいたメールアドレスにメールを送信しました。メールに記載された内容に沿って"
                         "お手続きください。メールが届かない場合は、メールアドレスの誤り、受信制限設定、"
                         "迷惑メールフォルダをご確認ください。")
UNLOCK_ACCEPTED = "ロック解除申請を受け付けました。結果は登録済みのメールアドレスにお知らせします。"


def account_out(account: Account) -> AccountOut:
    return AccountOut(account_id=account.id, login_id=account.login_id, email=account.email,
                      roles=account.roles, status=account.status, last_login_at=account.last_login_at,
                      issued_at=account.issued_at)


def login_out(account: Account, password_change_required: bool = False, totp_enrolment_required: bool = False
              ) -> LoginOut:
    return LoginOut(totp_enrolment_required=totp_enrolment_required,
                    account_id=account.id, login_id=account.login_id, email=account.email,
                    roles=account.roles, status=account.status, last_login_at=account.last_login_at,
                    issued_at=account.issued_at, session_version=account.session_version,
                    password_change_required=password_change_required,
                    password_changed_at=account.password_changed_at)


def unlock_out(r: UnlockRequest) -> UnlockRequestOut:
    return UnlockRequestOut(request_id=r.id, account_id=r.account_id, login_id=r.login_id, status=r.status,
                            lock_reason=r.lock_reason, message=r.message, filed_at=r.filed_at,
                            decided_at=r.decided_at, decided_by=r.decided_by, note=r.note, purge_date=r.purge_date)


def _as_of(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return parse_as_of(value)
    except ValueError as exc:
        raise Problem(400, "request.invalid", "入力内容に誤りがあります。",
                      errors=[FieldError("asOf", str(exc))]) from None

T = TypeVar("T")


def _known(found: T | None) -> T:
    """What the route looked up by account id; a 404 when no such account exists."""
    if found is None:
        raise Problem(404, "account.not_found", "アカウントが見つかりません。")
    return found


def service_api(settings: Settings, lifecycle: Lifecycle | None = None) -> ServiceApi:
    async def account_gauges() -> None:
        set_counts(ACCOUNTS, await app().accounts.counts_by_state())

    app = RunningService(lifecycle, lambda: bootstrap(settings), on_start=lambda: on_scrape(
        "lifecycle.accounts", account_gauges, settings.http.metrics_refresh_s))

    def staff(request: Request[Any, Any, Any]) -> str:
        """Operators, and support for the duties the seed's troubleshooting table gives it (mail re-issue)."""
        return caller_as(request, "operator", "support").account_id

    def operator(request: Request[Any, Any, Any]) -> str:
        return caller_as(request, "operator").account_id

    async def opened(account: Account) -> SessionOpened:
        """A session for an external login (the federation routes): the same answer as a password login."""
        lc = app()
        token, expires, family = await lc.sessions.open(account)
        return SessionOpened(account=login_out(account, lc.service.password_expired(account, lc.service.clock())),
                             refresh_token=token, refresh_expires_at=expires, session_id=family)

    @post("/internal/sessions", status_code=200)
    async def open_session(data: JSONBody[LoginIn], request: Request[Any, Any, Any]) -> SessionOpened:
        """Log in and open a refreshable session (the gateway's login)."""
        lc = app()
        account = await lc.service.login(data.login_id, data.password, correlation_of(request), data.totp_code)
        token, expires, family = await lc.sessions.open(account)
        return SessionOpened(account=login_out(account, lc.service.password_expired(account, lc.service.clock()),
                                               lc.service.needs_totp(account) and account.totp_secret is None),
                             refresh_token=token, refresh_expires_at=expires, session_id=family)

    @post("/internal/sessions/refresh", status_code=200)
    async def refresh_session(data: JSONBody[RefreshIn]) -> SessionOpened:
        lc = app()
        account, token, expires, family = await lc.sessions.refresh(data.refresh_token)
        return SessionOpened(account=login_out(account, lc.service.password_expired(account, lc.service.clock()),
                                               lc.service.needs_totp(account) and account.totp_secret is None),
                             refresh_token=token, refresh_expires_at=expires, session_id=family)

    @post("/internal/sessions/logout", status_code=204)
    async def logout(data: JSONBody[LogoutIn], request: Request[Any, Any, Any]) -> None:
        await app().sessions.logout(caller_of(request).account_id, data.refresh_token)

    @post("/internal/login", status_code=200)
    async def login(data: JSONBody[LoginIn], request: Request[Any, Any, Any]) -> LoginOut:
        lc = app()
        account = await lc.service.login(data.login_id, data.password, correlation_of(request), data.totp_code)
        return login_out(account, lc.service.password_expired(account, lc.service.clock()),
                         lc.service.needs_totp(account) and account.totp_secret is None)

    @post("/internal/accounts", status_code=201)
    async def create_account(data: JSONBody[CreateAccountIn], request: Request[Any, Any, Any]) -> AccountOut:
        account = await app().service.create_account(data.login_id, data.password, data.roles, data.email,
                                                           correlation_of(request))
        return account_out(account)

    @get("/internal/accounts/{account_id:str}")
    async def get_account(account_id: FromPath[str]) -> AccountOut:
        return account_out(_known(await app().accounts.get(account_id)))

    @get("/internal/accounts/{account_id:str}/session")
    async def session(account_id: FromPath[str]) -> SessionOut:
        version, status, roles = _known(await app().accounts.session_state(account_id))
        return SessionOut(session_version=version, status=status, roles=roles)

    @post("/internal/me/password", status_code=200)
    async def change_password(data: JSONBody[PasswordChangeIn], request: Request[Any, Any, Any]) -> LoginOut:
        caller = caller_of(request)
        account = await app().credentials.change(caller.account_id, data.current_password, data.new_password,
                                                       correlation_of(request))
        return login_out(account)

    @post("/internal/me/totp", status_code=201)
    async def totp_setup(request: Request[Any, Any, Any]) -> TotpSetupOut:
        enrolment = await app().totp.setup(caller_of(request).account_id)
        return TotpSetupOut(secret=enrolment.secret, otpauth_uri=enrolment.otpauth_uri)

    @post("/internal/me/totp/confirm", status_code=204)
    async def totp_confirm(data: JSONBody[TotpConfirmIn], request: Request[Any, Any, Any]) -> None:
        await app().totp.confirm(caller_of(request).account_id, data.code, correlation_of(request))

    @post("/internal/password-reset", status_code=202)
    async def request_reset(data: JSONBody[ResetRequestIn], request: Request[Any, Any, Any]) -> AcceptedOut:
        await app().credentials.request_reset(data.login_id, data.client_ip, correlation_of(request))
        return AcceptedOut(message=RESET_ACCEPTED)

    async def reset_password(data: ResetCompleteIn | AnswerIn, request: Request[Any, Any, Any]) -> AcceptedOut:
        """The link's reset, with the secret question's answer where the account has one (both routes)."""
        await app().credentials.complete_reset(data.token, data.new_password, correlation_of(request),
                                               answer=data.answer, client_ip=data.client_ip)
        return AcceptedOut(message="パスワードを再設定しました。新しいパスワードでログインしてください。")

    @post("/internal/password-reset/complete", status_code=200)
    async def complete_reset(data: JSONBody[ResetCompleteIn], request: Request[Any, Any, Any]) -> AcceptedOut:
        return await reset_password(data, request)

    @post("/internal/registrations", status_code=202)
    async def request_registration(data: JSONBody[RegistrationIn], request: Request[Any, Any, Any]) -> AcceptedOut:
        await app().registrations.request(data.email, data.client_ip, correlation_of(request))
        return AcceptedOut(message=REGISTRATION_ACCEPTED)

    @post("/internal/registrations/check", status_code=200)
    async def check_registration(data: JSONBody[RegistrationTokenIn]) -> RegistrationCheckOut:
        found = await app().registrations.check(data.token)
        return RegistrationCheckOut(email=found.email, expires_at=found.expires_at)

    @post("/internal/registrations/complete", status_code=201)
    async def complete_registration(data: JSONBody[RegistrationCompleteIn],
                                    request: Request[Any, Any, Any]) -> AccountOut:
        account = await app().registrations.complete(data.token, data.password, correlation_of(request))
        return account_out(account)

    @post("/internal/enrolments/check", status_code=200)
    async def check_enrolment(data: JSONBody[EnrolmentCheckIn]) -> EnrolmentCheckOut:
        found = await app().enrolments.check(data.token)
        return EnrolmentCheckOut(login_id=found.login_id, expires_at=found.expires_at)

    @post("/internal/enrolments/complete", status_code=200)
    async def complete_enrolment(data: JSONBody[EnrolmentCompleteIn], request: Request[Any, Any, Any]) -> AccountOut:
        account = await app().enrolments.complete(data.token, data.one_time_password, data.password,
                                                        data.secret_question, data.secret_answer,
                                                        correlation_of(request))
        return account_out(account)

    @post("/internal/accounts/{account_id:str}/enrolment", status_code=201)
    async def reissue_enrolment(account_id: FromPath[str], request: Request[Any, Any, Any]) -> EnrolmentReissuedOut:
        staff(request)
        issued = await app().enrolments.reissue(account_id, correlation_of(request))
        return EnrolmentReissuedOut(account_id=issued.account_id, login_id=issued.login_id,
                                  expires_at=issued.expires_at)

    @put("/internal/me/secret-question", status_code=200)
    async def set_secret_question(data: JSONBody[SecretQuestionIn],
                                  request: Request[Any, Any, Any]) -> SecretQuestionSetOut:
        account = await app().secret_questions.register(
            caller_of(request).account_id, data.question, data.answer, correlation_of(request),
            current_password=data.current_password, stepped_up=data.stepped_up)
        return SecretQuestionSetOut(question=account.secret_question or "", message="秘密の質問を登録しました。")

    @post("/internal/password-reset/question", status_code=200)
    async def reset_question(data: JSONBody[QuestionRequestIn]) -> QuestionOut:
        question = await app().secret_questions.question(data.login_id, data.client_ip)
        return QuestionOut(login_id=data.login_id, question=question)

    @post("/internal/password-reset/answer", status_code=200)
    async def reset_answer(data: JSONBody[AnswerIn], request: Request[Any, Any, Any]) -> AcceptedOut:
        return await reset_password(data, request)

    @post("/internal/unlock-requests", status_code=202)
    async def file_unlock(data: JSONBody[UnlockFileIn], request: Request[Any, Any, Any]) -> AcceptedOut:
        await app().unlocks.file(data.login_id, data.message, data.client_ip, correlation_of(request))
        return AcceptedOut(message=UNLOCK_ACCEPTED)

    @get("/internal/unlock-requests")
    async def list_unlocks(request: Request[Any, Any, Any],
                           status: FromQuery[str | None] = None) -> list[UnlockRequestOut]:
        staff(request)
        return [unlock_out(r) for r in await app().unlocks.listing(status)]

    @post("/internal/unlock-requests/{request_id:str}/approve", status_code=200)
    async def approve(request_id: FromPath[str], data: JSONBody[UnlockDecisionIn],
                      request: Request[Any, Any, Any]) -> UnlockRequestOut:
        decided = await app().unlocks.approve(request_id, staff(request), data.note, correlation_of(request))
        return unlock_out(decided)

    @post("/internal/unlock-requests/{request_id:str}/reject", status_code=200)
    async def reject(request_id: FromPath[str], data: JSONBody[UnlockDecisionIn],
                     request: Request[Any, Any, Any]) -> UnlockRequestOut:
        decided = await app().unlocks.reject(request_id, staff(request), data.note, correlation_of(request))
        return unlock_out(decided)

    @post("/internal/accounts/{account_id:str}/lock", status_code=200)
    async def lock(account_id: FromPath[str], request: Request[Any, Any, Any]) -> AccountOut:
        account = await app().unlocks.operator_lock(account_id, operator(request), correlation_of(request))
        return account_out(account)

    @get("/internal/lifecycle/preview")
    async def preview(request: Request[Any, Any, Any]) -> PreviewOut:
        operator(request)
        moment, rows = await app().sweeps.preview(_as_of(request.query_params.get("asOf")))
        groups = {stage: [msgspec.convert(r.as_json(), PreviewRowOut) for r in found] for stage, found in rows.items()}
        return PreviewOut(as_of=moment, **groups)

    handlers = [open_session, refresh_session, logout, login, create_account, get_account, session, change_password,
                request_reset, complete_reset, request_registration, check_registration, complete_registration,
                check_enrolment, complete_enrolment, reissue_enrolment,
                set_secret_question, reset_question, reset_answer, totp_setup, totp_confirm,
                file_unlock, list_unlocks, approve, reject, lock, preview,
                *oidc_handlers(lambda: app().oidc),
                *federation_handlers(app, opened, account_out)]
    return app.api(NAME, handlers)


create_app, main = api_entrypoints(NAME, service_api)


if __name__ == "__main__":
    main()
