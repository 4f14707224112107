"""Kagi as OpenID Provider for the target systems: registered clients, authorization codes and signing keys.

Pure rules only; the service stores them and the gateway speaks the protocol.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import msgspec

from kagi_shared.problems import FieldError, Problem

TARGET_SYSTEMS = ("TAXIS", "JOHS", "JUJU", "LOACUS")
"""Systems whose users log in through Kagi: the requestable ones of the permission catalogue."""


class OidcPolicy(msgspec.Struct, frozen=True, kw_only=True):
    code_ttl_s: int = 60
    """RFC 6749 §4.1.2 recommends at most 10 minutes; the code is redeemed by a server in the same second."""
    token_ttl_s: int = 900
    """ID and access tokens: the longest any token signed by a key can live, so a retired key stays published
    that long after a rotation."""


class OidcClient(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The ``client_id``."""
    name: str
    system: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    secret_hash: str
    created_at: datetime
    status: str = "active"


class AuthorizationCode(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """HMAC of the code; the code itself is never stored."""
    client_id: str
    account_id: str
    redirect_uri: str
    code_challenge: str
    nonce: str | None
    scope: str
    auth_time: datetime
    session_version: int
    expires_at: datetime


class SigningKey(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    """The ``kid``."""
    private_jwk: dict[str, str]
    created_at: datetime
    retired_at: datetime | None = None


_CLIENT_NAME = re.compile(r"^[\w .\-()（）・ー]{1,80}$")


def check_registration(system: str, redirect_uris: list[str], post_logout_redirect_uris: list[str],
                       name: str, *, allow_http: bool) -> None:
    """A client names one target system and exact, absolute redirect URIs (https outside local development)."""
    errors: list[FieldError] = []
    if system not in TARGET_SYSTEMS:
        errors.append(FieldError("system", f"one of {', '.join(TARGET_SYSTEMS)}"))
    if not redirect_uris:
        errors.append(FieldError("redirectUris", "at least one"))
    for field, uris in (("redirectUris", redirect_uris), ("postLogoutRedirectUris", post_logout_redirect_uris)):
        for uri in uris:
            reason = uri_problem(uri, allow_http=allow_http)
            if reason:
                errors.append(FieldError(field, f"{uri!r}: {reason}"))
    if not _CLIENT_NAME.match(name):
        errors.append(FieldError("name", "1 to 80 letters, digits, spaces or . - ( )"))
    if errors:
        raise Problem(400, "oidc.client_invalid", "クライアントの登録内容に誤りがあります。", errors=errors)


def uri_problem(uri: str, *, allow_http: bool) -> str | None:
    try:
        parts = urlsplit(uri)
    except ValueError:
        return "not a URI"
    if parts.scheme not in (("https", "http") if allow_http else ("https",)):
        return "must be https" if not allow_http else "must be http(s)"
    if not parts.hostname:
        return "needs a host"
    if parts.fragment or "#" in uri:
        return "must not have a fragment"  # RFC 6749 §3.1.2
    return None


def published_keys(keys: list[SigningKey], now: datetime, policy: OidcPolicy) -> list[SigningKey]:
    """The current key and every retired key a still-valid token may have been signed with."""
    keep = timedelta(seconds=policy.token_ttl_s)
    return [k for k in keys if k.retired_at is None or k.retired_at + keep > now]


def current_key(keys: list[SigningKey]) -> SigningKey | None:
    live = [k for k in keys if k.retired_at is None]
    return max(live, key=lambda k: k.created_at) if live else None


def redeemable(code: AuthorizationCode | None, client_id: str, redirect_uri: str, now: datetime) -> bool:
    """RFC 6749 §4.1.3: issued to this client, for this redirect URI, and not expired."""
    return (code is not None and code.client_id == client_id and code.redirect_uri == redirect_uri
            and code.expires_at > now)
