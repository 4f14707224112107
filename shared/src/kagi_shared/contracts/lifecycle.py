"""Lifecycle's internal API: accounts and sessions, passwords and the secret question, self-registration, B2B
enrolment, unlock requests, the inactivity ladder's preview, external IDs (SNS連携) and the OpenID Provider's
clients, codes and signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated

import msgspec

from kagi_shared.contracts import Body, Reply, ServiceClient

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller

LoginId = Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
Password = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
Note = Annotated[str, msgspec.Meta(max_length=1000)]
Token = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
Answer = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


# -- accounts and sessions -------------------------------------------------------------------------
class LoginIn(Body):
    login_id: str
    password: str
    totp_code: Annotated[str, msgspec.Meta(max_length=16)] | None = None


class CreateAccountIn(Body):
    login_id: str
    password: str
    roles: list[str]
    email: str | None = None


class AccountOut(Reply):
    account_id: str
    login_id: str
    email: str
    roles: list[str]
    status: str
    last_login_at: datetime | None
    issued_at: datetime


class LoginOut(AccountOut):
    """What the gateway needs at login beyond the account: the session version for ``sv``, expiry."""

    session_version: int = 0
    password_change_required: bool = False
    password_changed_at: datetime | None = None
    totp_enrolment_required: bool = False
    """A privileged account without its second factor yet: the gateway opens only the enrolment to it."""


class SessionOut(Reply):
    session_version: int
    status: str
    roles: list[str]
    """The account's roles now: the gateway authorises with these, not with the token's copy."""


class TotpSetupOut(Reply):
    secret: str
    otpauth_uri: str


class TotpConfirmIn(Body):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class RefreshIn(Body):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LogoutIn(Body):
    refresh_token: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class SessionOpened(Reply):
    account: LoginOut
    refresh_token: str
    refresh_expires_at: datetime
    session_id: str
    """The refresh token family: the gateway puts it in the access token (``sid``)."""


class AcceptedOut(Reply):
    """A request taken for later processing (mail follows); the same answer whether or not the address is known."""

    message: str
    accepted: bool = True


# -- passwords and the secret question -------------------------------------------------------------
class PasswordChangeIn(Body):
    current_password: Password
    new_password: Password


class ResetRequestIn(Body):
    login_id: LoginId
    client_ip: str | None = None


class ResetCompleteIn(Body):
    token: Token
    new_password: Password
    answer: Answer | None = None
    """Required when the account has a secret question (the link alone sets no password then)."""
    client_ip: str | None = None


class SecretQuestionIn(Body):
    question: Answer
    answer: Answer
    current_password: Password | None = None
    stepped_up: bool = False
    """The gateway saw a step-up window open for the caller's session."""


class SecretQuestionSetOut(Reply):
    question: str
    message: str


class QuestionRequestIn(Body):
    login_id: LoginId
    client_ip: str | None = None


class QuestionOut(Reply):
    login_id: str
    question: str


class AnswerIn(Body):
    token: Token
    answer: Answer
    new_password: Password
    client_ip: str | None = None


# -- self-registration and B2B enrolment -----------------------------------------------------------
class RegistrationIn(Body):
    email: LoginId
    client_ip: str | None = None


class RegistrationTokenIn(Body):
    token: Token


class RegistrationCompleteIn(RegistrationTokenIn):
    password: Password


class RegistrationCheckOut(Reply):
    email: str
    expires_at: datetime


class EnrolmentCheckIn(Body):
    token: Token


class EnrolmentCompleteIn(EnrolmentCheckIn):
    one_time_password: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Password
    """Checked against the active password policy profile; the ID is the one the URL was mailed for."""
    secret_question: Answer | None = None
    secret_answer: Answer | None = None


class EnrolmentCheckOut(Reply):
    login_id: str
    expires_at: datetime


class EnrolmentReissuedOut(Reply):
    account_id: str
    login_id: str
    expires_at: datetime


# -- unlock requests and the ladder ----------------------------------------------------------------
class UnlockFileIn(Body):
    login_id: LoginId
    message: Note = ""
    client_ip: str | None = None


class UnlockDecisionIn(Body):
    note: Note | None = None


class UnlockRequestOut(Reply):
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


class PreviewRowOut(Reply):
    account_id: str
    login_id: str
    email: str
    status: str
    stage: str
    base_date: str
    stage_date: str


class PreviewOut(Reply):
    as_of: datetime
    warning1: list[PreviewRowOut]
    warning2: list[PreviewRowOut]
    lock: list[PreviewRowOut]
    purge: list[PreviewRowOut]


# -- external IDs (SNS連携) -------------------------------------------------------------------------
ProviderName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")]
Subject = Annotated[str, msgspec.Meta(min_length=1, max_length=255)]


class ExternalLoginIn(Body):
    provider: ProviderName
    subject: Subject


class InviteeAccountIn(Body):
    """Invite's redemption with a verified external ID: the linked account, or a new one for the invitee."""

    provider: ProviderName
    subject: Subject
    login_id: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    email: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    roles: list[str]


class InviteeAccountOut(Reply):
    account: AccountOut
    created: bool


class ExternalLinkIn(Body):
    subject: Subject


class ExternalLinkOut(Reply):
    provider: str
    linked_at: datetime


class ExternalLinksOut(Reply):
    links: list[ExternalLinkOut]


# -- the OpenID Provider ---------------------------------------------------------------------------
OidcShort = Annotated[str, msgspec.Meta(min_length=1, max_length=512)]
Uri = Annotated[str, msgspec.Meta(min_length=1, max_length=2048)]
Verifier = Annotated[str, msgspec.Meta(min_length=43, max_length=128)]


class ClientOut(Reply):
    client_id: str
    name: str
    system: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]


class CodeIn(Body):
    client_id: OidcShort
    account_id: OidcShort
    redirect_uri: Uri
    code_challenge: Verifier
    scope: OidcShort
    auth_time: datetime
    session_version: int
    nonce: OidcShort | None = None


class CodeOut(Reply):
    code: str


class CodeRedeemIn(Body):
    client_id: OidcShort
    client_secret: OidcShort
    code: OidcShort
    redirect_uri: Uri
    code_verifier: Verifier
    """RFC 7636 §4.1: 43 to 128 characters."""


class GrantOut(Reply):
    client: ClientOut
    account_id: str
    nonce: str | None
    scope: str
    auth_time: datetime
    session_version: int


class SigningKeyOut(Reply):
    kid: str
    jwk: dict[str, str]
    """The private JWK: only the gateway, which signs, reads this route."""
    created_at: datetime
    retired_at: datetime | None


class SigningKeysOut(Reply):
    keys: list[SigningKeyOut]
    """Current key first, then retired keys still valid for verification."""


class LifecycleClient(ServiceClient):
    service = "lifecycle"

    # -- accounts and sessions -------------------------------------------------------------------
    async def open_session(self, data: LoginIn, *, rid: str | None = None) -> SessionOpened:
        return await self._call(SessionOpened, "POST", "/internal/sessions", body=data, rid=rid)

    async def refresh_session(self, data: RefreshIn, *, rid: str | None = None) -> SessionOpened:
        return await self._call(SessionOpened, "POST", "/internal/sessions/refresh", body=data, rid=rid)

    async def logout(self, caller: Caller, data: LogoutIn, *, rid: str | None = None) -> None:
        await self._send("POST", "/internal/sessions/logout", caller=caller, body=data, rid=rid)

    async def external_session(self, data: ExternalLoginIn, *, rid: str | None = None) -> SessionOpened:
        return await self._call(SessionOpened, "POST", "/internal/sessions/external", body=data, rid=rid)

    async def invitee_account(self, data: InviteeAccountIn, *, rid: str | None = None) -> InviteeAccountOut:
        return await self._call(InviteeAccountOut, "POST", "/internal/accounts/external", body=data, rid=rid)

    async def login(self, data: LoginIn, *, rid: str | None = None) -> LoginOut:
        return await self._call(LoginOut, "POST", "/internal/login", body=data, rid=rid)

    async def create_account(self, data: CreateAccountIn, *, rid: str | None = None) -> AccountOut:
        return await self._call(AccountOut, "POST", "/internal/accounts", body=data, rid=rid)

    async def account(self, account_id: str, *, caller: Caller | None = None, rid: str | None = None) -> AccountOut:
        return await self._call(AccountOut, "GET", "/internal/accounts/{account_id}", account_id=account_id,
                                caller=caller, rid=rid)

    async def session(self, account_id: str) -> SessionOut:
        """The session version, status and roles the gateway authorises with (its guard reads this route itself,
        cached; see ``kagi_gateway.deps.SessionVersions``)."""
        return await self._call(SessionOut, "GET", "/internal/accounts/{account_id}/session", account_id=account_id)

    async def totp_setup(self, caller: Caller, *, rid: str | None = None) -> TotpSetupOut:
        return await self._call(TotpSetupOut, "POST", "/internal/me/totp", caller=caller, rid=rid)

    async def totp_confirm(self, caller: Caller, data: TotpConfirmIn, *, rid: str | None = None) -> None:
        await self._send("POST", "/internal/me/totp/confirm", caller=caller, body=data, rid=rid)

    # -- passwords and the secret question -------------------------------------------------------
    async def change_password(self, caller: Caller, data: PasswordChangeIn, *, rid: str | None = None) -> LoginOut:
        return await self._call(LoginOut, "POST", "/internal/me/password", caller=caller, body=data, rid=rid)

    async def request_reset(self, data: ResetRequestIn, *, rid: str | None = None) -> AcceptedOut:
        return await self._call(AcceptedOut, "POST", "/internal/password-reset", body=data, rid=rid)

    async def complete_reset(self, data: ResetCompleteIn, *, rid: str | None = None) -> AcceptedOut:
        return await self._call(AcceptedOut, "POST", "/internal/password-reset/complete", body=data, rid=rid)

    async def set_secret_question(self, caller: Caller, data: SecretQuestionIn, *,
                                  rid: str | None = None) -> SecretQuestionSetOut:
        return await self._call(SecretQuestionSetOut, "PUT", "/internal/me/secret-question", caller=caller,
                                body=data, rid=rid)

    async def reset_question(self, data: QuestionRequestIn, *, rid: str | None = None) -> QuestionOut:
        return await self._call(QuestionOut, "POST", "/internal/password-reset/question", body=data, rid=rid)

    async def reset_answer(self, data: AnswerIn, *, rid: str | None = None) -> AcceptedOut:
        return await self._call(AcceptedOut, "POST", "/internal/password-reset/answer", body=data, rid=rid)

    # -- self-registration and enrolment ---------------------------------------------------------
    async def request_registration(self, data: RegistrationIn, *, rid: str | None = None) -> AcceptedOut:
        return await self._call(AcceptedOut, "POST", "/internal/registrations", body=data, rid=rid)

    async def check_registration(self, data: RegistrationTokenIn, *,
                                 rid: str | None = None) -> RegistrationCheckOut:
        return await self._call(RegistrationCheckOut, "POST", "/internal/registrations/check", body=data, rid=rid)

    async def complete_registration(self, data: RegistrationCompleteIn, *, rid: str | None = None) -> AccountOut:
        return await self._call(AccountOut, "POST", "/internal/registrations/complete", body=data, rid=rid)

    async def check_enrolment(self, data: EnrolmentCheckIn, *, rid: str | None = None) -> EnrolmentCheckOut:
        return await self._call(EnrolmentCheckOut, "POST", "/internal/enrolments/check", body=data, rid=rid)

    async def complete_enrolment(self, data: EnrolmentCompleteIn, *, rid: str | None = None) -> AccountOut:
        return await self._call(AccountOut, "POST", "/internal/enrolments/complete", body=data, rid=rid)

    async def reissue_enrolment(self, caller: Caller, account_id: str, *,
                                rid: str | None = None) -> EnrolmentReissuedOut:
        return await self._call(EnrolmentReissuedOut, "POST", "/internal/accounts/{account_id}/enrolment",
                                account_id=account_id, caller=caller, rid=rid)

    # -- unlock requests, the operator's lock, the ladder ----------------------------------------
    async def file_unlock(self, data: UnlockFileIn, *, rid: str | None = None) -> AcceptedOut:
        return await self._call(AcceptedOut, "POST", "/internal/unlock-requests", body=data, rid=rid)

    async def unlock_requests(self, caller: Caller, status: str | None = None, *,
                              rid: str | None = None) -> list[UnlockRequestOut]:
        return await self._call(list[UnlockRequestOut], "GET", "/internal/unlock-requests", caller=caller,
                                params={"status": status} if status else None, rid=rid)

    async def approve_unlock(self, caller: Caller, unlock_id: str, data: UnlockDecisionIn, *,
                             rid: str | None = None) -> UnlockRequestOut:
        return await self._call(UnlockRequestOut, "POST", "/internal/unlock-requests/{unlock_id}/approve",
                                unlock_id=unlock_id, caller=caller, body=data, rid=rid)

    async def reject_unlock(self, caller: Caller, unlock_id: str, data: UnlockDecisionIn, *,
                            rid: str | None = None) -> UnlockRequestOut:
        return await self._call(UnlockRequestOut, "POST", "/internal/unlock-requests/{unlock_id}/reject",
                                unlock_id=unlock_id, caller=caller, body=data, rid=rid)

    async def lock(self, caller: Caller, account_id: str, *, rid: str | None = None) -> AccountOut:
        return await self._call(AccountOut, "POST", "/internal/accounts/{account_id}/lock", account_id=account_id,
                                caller=caller, rid=rid)

    async def preview(self, caller: Caller, as_of: str | None = None, *, rid: str | None = None) -> PreviewOut:
        return await self._call(PreviewOut, "GET", "/internal/lifecycle/preview", caller=caller,
                                params={"asOf": as_of} if as_of else None, rid=rid)

    # -- external IDs ----------------------------------------------------------------------------
    async def my_links(self, caller: Caller, *, rid: str | None = None) -> ExternalLinksOut:
        return await self._call(ExternalLinksOut, "GET", "/internal/me/external-links", caller=caller, rid=rid)

    async def links_of(self, account_id: str, *, caller: Caller | None = None,
                       rid: str | None = None) -> ExternalLinksOut:
        return await self._call(ExternalLinksOut, "GET", "/internal/accounts/{account_id}/external-links",
                                account_id=account_id, caller=caller, rid=rid)

    async def link(self, caller: Caller, provider: str, data: ExternalLinkIn, *,
                   rid: str | None = None) -> ExternalLinkOut:
        return await self._call(ExternalLinkOut, "PUT", "/internal/me/external-links/{provider}", provider=provider,
                                caller=caller, body=data, rid=rid)

    async def unlink(self, caller: Caller, provider: str, *, rid: str | None = None) -> None:
        await self._send("DELETE", "/internal/me/external-links/{provider}", provider=provider, caller=caller, rid=rid)

    # -- the OpenID Provider ---------------------------------------------------------------------
    async def oidc_client(self, client_id: str) -> ClientOut:
        return await self._call(ClientOut, "GET", "/internal/oidc/clients/{client_id}", client_id=client_id)

    async def issue_code(self, data: CodeIn) -> CodeOut:
        return await self._call(CodeOut, "POST", "/internal/oidc/codes", body=data)

    async def redeem_code(self, data: CodeRedeemIn) -> GrantOut:
        return await self._call(GrantOut, "POST", "/internal/oidc/codes/redeem", body=data)

    async def signing_keys(self) -> SigningKeysOut:
        return await self._call(SigningKeysOut, "GET", "/internal/oidc/keys")
