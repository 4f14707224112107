"""Signed short-lived access tokens (JWT, HS256 via PyJWT) carrying the caller's roles.

Every token names its audience (``aud: kagi-api``: a token minted for something else with the same key is
refused) and its key (``kid``: a fingerprint, never the key). Rotation: the new key signs, the previous ones
(``jwt_previous_secrets``) still verify the tokens they signed until those expire.

``sv`` is the account's session version at login: lifecycle bumps it when sessions must end
(lock, purge, password change), and the role guard refuses a token whose ``sv`` is behind.
``scope: password_change`` marks the restricted token a login with an expired password gets:
it opens only the password change endpoint.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta

import jwt
import msgspec

from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import SecuritySettings

ISSUER = "kagi-gateway"
AUDIENCE = "kagi-api"
PASSWORD_CHANGE_SCOPE = "password_change"  # noqa: S105 - a scope name
TOTP_ENROLMENT_SCOPE = "totp_enrolment"


class TokenClaims(msgspec.Struct, frozen=True, kw_only=True):
    caller: Caller
    session_version: int = 0
    scope: str | None = None

    @property
    def password_change_only(self) -> bool:
        return self.scope == PASSWORD_CHANGE_SCOPE


def key_id(secret: str) -> str:
    """A public name of a signing key (a truncated hash of it)."""
    return hashlib.sha256(b"kagi-jwt-kid:" + secret.encode()).hexdigest()[:16]


def verification_keys(security: SecuritySettings) -> dict[str, str]:
    keys = [security.jwt_secret, *(k.strip() for k in security.jwt_previous_secrets.split(",") if k.strip())]
    return {key_id(k): k for k in keys}


def issue_token(caller: Caller, security: SecuritySettings, now: datetime | None = None, *,
                session_version: int = 0, scope: str | None = None) -> tuple[str, datetime]:
    """``caller.session_id`` (the refresh token family) travels as ``sid``: a step-up belongs to it."""
    now = now or datetime.now(UTC)
    expires = now + timedelta(seconds=security.access_token_ttl_s)
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
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
    return jwt.encode(claims, security.jwt_secret, algorithm="HS256",
                      headers={"kid": key_id(security.jwt_secret)}), expires


def read_claims(token: str, security: SecuritySettings) -> TokenClaims:
    try:
        key = verification_keys(security).get(str(jwt.get_unverified_header(token).get("kid")))
        if key is None:  # no kid, or a key that was retired (or never ours)
            raise jwt.InvalidKeyError("unknown key")
        claims = jwt.decode(token, key, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE,
                            options={"require": ["exp", "iat", "sub", "iss", "aud"]})
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
