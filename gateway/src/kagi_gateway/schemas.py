"""The gateway's own public bodies, where the public shape differs from the internal one (the others are the
services' contracts, ``kagi_shared.contracts``): camelCase, strict (unknown fields are refused)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import msgspec

from kagi_shared.contracts import Body as Dto
from kagi_shared.contracts.lifecycle import AccountOut

__all__ = ["Dto", "LoginIn", "MeOut", "TokenOut"]


class LoginIn(Dto):
    login_id: Annotated[str, msgspec.Meta(min_length=1, max_length=254)]
    password: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    totp_code: Annotated[str, msgspec.Meta(
        min_length=1, max_length=16,
        description="the authenticator app's 6-digit code; operators and company admins once enrolled")] | None = None


class TokenOut(Dto):
    access_token: str
    token_type: str
    expires_at: datetime
    roles: list[str]
    refresh_token: str | None = None
    refresh_expires_at: datetime | None = None


class MeOut(AccountOut):
    pass
