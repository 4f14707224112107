"""Signed short-lived access tokens (JWT, HS256 via PyJWT) carrying the caller's roles.

``sv`` is the account's session version at login: lifecycle bumps it when sessions must end
(lock, purge, password change), and the role guard refuses a token whose ``sv`` is behind.
``scope: password_change`` marks the restricted token a login with an expired password gets:
it opens only the password change endpoint.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt
import msgspec

from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import SecuritySettings

ISSUER = "kagi-gateway"
PASSWORD_CHANGE_SCOPE = "password_change"  # noqa: S105 - a scope name


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    caller: Caller
    session_version: int = 0
    scope: str | None = None

    @property
    def password_change_only(self) -> bool:
        return self.scope == PASSWORD_CHANGE_SCOPE


def issue_token(caller: Caller, security: SecuritySettings, now: datetime | None = None, *,
                session_version: int = 0, scope: str | None = None) -> tuple[str, datetime]:
    """``caller.session_id`` (the refresh token family) travels as ``sid``: a step-up belongs to it."""
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=security.access_token_ttl_s)
    claims = {
        "iss": ISSUER,
        "sub": caller.account_id,
        "lid": caller.login_id,
        "email": caller.email,
        "roles": list(caller.roles),
        "sv": session_version,
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": str(uuid.uuid4()),
    }
    if scope:
        claims["scope"] = scope
    if caller.session_id:
        claims["sid"] = caller.session_id
    return jwt.encode(claims, security.jwt_secret, algorithm="HS256"), expires


def read_claims(token: str, security: SecuritySettings) -> TokenClaims:
    try:
        claims = jwt.decode(token, security.jwt_secret, algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Problem(401, "auth.token_expired", "ログインの有効期限が切れました。再度ログインしてください。",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    except jwt.PyJWTError:
        raise Problem(401, "auth.token_invalid", "認証情報が無効です。再度ログインしてください。",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    caller = Caller(account_id=claims["sub"], login_id=claims.get("lid", ""), email=claims.get("email", ""),
                    roles=tuple(claims.get("roles", ())),
                    session_id=claims["sid"] if isinstance(claims.get("sid"), str) else None)
    sv = claims.get("sv", 0)
    return TokenClaims(caller=caller, session_version=sv if isinstance(sv, int) else -1,
                       scope=claims.get("scope") if isinstance(claims.get("scope"), str) else None)


def read_token(token: str, security: SecuritySettings) -> Caller:
    return read_claims(token, security).caller
