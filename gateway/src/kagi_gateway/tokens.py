"""Signed short-lived access tokens (JWT, HS256 via PyJWT) carrying the caller's roles."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import jwt

from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import SecuritySettings

ISSUER = "kagi-gateway"


def issue_token(caller: Caller, security: SecuritySettings, now: datetime | None = None) -> tuple[str, datetime]:
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=security.access_token_ttl_s)
    claims = {
        "iss": ISSUER,
        "sub": caller.account_id,
        "lid": caller.login_id,
        "email": caller.email,
        "roles": list(caller.roles),
        "iat": int(now.timestamp()),
        "exp": int(expires.timestamp()),
        "jti": str(uuid.uuid4()),
    }
    return jwt.encode(claims, security.jwt_secret, algorithm="HS256"), expires


def read_token(token: str, security: SecuritySettings) -> Caller:
    try:
        claims = jwt.decode(token, security.jwt_secret, algorithms=["HS256"], issuer=ISSUER,
                            options={"require": ["exp", "iat", "sub", "iss"]})
    except jwt.ExpiredSignatureError:
        raise Problem(401, "auth.token_expired", "ログインの有効期限が切れました。再度ログインしてください。",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    except jwt.PyJWTError:
        raise Problem(401, "auth.token_invalid", "認証情報が無効です。再度ログインしてください。",
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}) from None
    return Caller(account_id=claims["sub"], login_id=claims.get("lid", ""), email=claims.get("email", ""),
                  roles=tuple(claims.get("roles", ())))
