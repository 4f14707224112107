"""Public request and response bodies: camelCase, strict (unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec


class Dto(msgspec.Struct, rename="camel", forbid_unknown_fields=True, kw_only=True):
    pass


class AcceptedOut(Dto):
    """A request taken for later processing (mail follows); the same answer whether or not the address is known."""

    message: str
    accepted: bool = True


class LoginIn(Dto):
    login_id: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    totp_code: Annotated[str, msgspec.Meta(
        min_length=1, max_length=16,
        description="the authenticator app's 6-digit code; operators and company admins once enrolled")] | None = None


class TotpSetupOut(Dto):
    secret: str
    otpauth_uri: str


class TotpConfirmIn(Dto):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]


class TokenOut(Dto):
    access_token: str
    token_type: str
    expires_at: datetime
    roles: list[str]
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None


class RefreshIn(Dto):
    refresh_token: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class LogoutIn(Dto):
    refresh_token: Annotated[str, msgspec.Meta(max_length=128)] | None = None


class MeOut(Dto):
    account_id: str
    login_id: str
    email: str
    roles: list[str]
    status: str
    last_login_at: datetime | None
    issued_at: datetime


class StepUpIssuedOut(Dto):
    code_id: str
    expires_at: datetime
    sent_to: str


class StepUpVerifyIn(Dto):
    code: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]


class StepUpStateOut(Dto):
    verified: bool
    valid_until: datetime | None = None


class MailDeliveryOut(Dto):
    delivery_id: str
    template: str
    channel: str
    recipient: str
    category: str
    status: str
    attempts: int
    created_at: datetime
    sent_at: datetime | None
    last_error: str | None
