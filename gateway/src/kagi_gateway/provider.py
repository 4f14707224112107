"""Kagi as OpenID Provider for the target systems (TAXIS, JOHS, JUJU, LOACUS): OpenID Connect Core 1.0, Authorization
Code flow with PKCE (S256) for confidential clients the operator registers (``kagi clients create``).

The user authenticates on the hosted ``/login`` page (its session, lock, expired-password and abroad rules); this
module only speaks the protocol. Lifecycle keeps clients, codes and the signing keys; the ID token and the userinfo
carry the login ID, the company and the permission for the client's own system, read from permissions at that
moment. The access token names the account's session version, so a lock, purge, revoke or logout ends it at once
(the same check as every API call). Tokens are signed and verified with joserfc (RS256, ``kid``); PKCE with Authlib.

The endpoints answer in OAuth's own formats (RFC 6749 §5.2 errors, redirects), not problem+json, so they stay out
of the OpenAPI document; the discovery document describes them.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import Key, KeySet, RSAKey
from joserfc.jws import extract_compact
from litestar import Controller, Request, Response, get, post
from litestar.di import NamedDependency
from litestar.response import Redirect, Template

from kagi_gateway.deps import ANY_USER, PUBLIC, SESSIONS, authorize, portal_url, settings_of
from kagi_gateway.pages.forms import form_of, message_page, page
from kagi_gateway.pages.session import page_session
from kagi_gateway.services import ForwardedProblem, Services
from kagi_gateway.tokens import read_claims
from kagi_shared.contracts.lifecycle import AccountOut, ClientOut, CodeIn, CodeRedeemIn, LogoutIn
from kagi_shared.contracts.permissions import MyPermissionsOut
from kagi_shared.problems import Problem
from kagi_shared.service_api import Caller
from kagi_shared.settings import Settings

KEY_CACHE_S = 30.0
ALG = "RS256"
SCOPES = ("openid", "profile", "email")
NO_STORE = {"cache-control": "no-store", "pragma": "no-cache"}
CLAIMS = ("sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "azp", "preferred_username", "email",
          "kagi_login_id", "kagi_company_id", "kagi_system", "kagi_permission")


def issuer(settings: Settings) -> str:
    return portal_url(settings)


class ProviderKeys:
    """The signing keys from lifecycle, cached briefly; an unknown ``kid`` refreshes at once (a rotation)."""

    def __init__(self) -> None:
        self._loaded = 0.0
        self._keys: list[Key] = []

    async def keys(self, services: Services, refresh: bool = False) -> list[Key]:
        if refresh or not self._keys or time.monotonic() - self._loaded > KEY_CACHE_S:
            reply = await services.lifecycle.signing_keys()
            self._keys = [RSAKey.import_key(dict[str, str | list[str]](k.jwk)) for k in reply.keys]
            self._loaded = time.monotonic()
        return self._keys

    async def signing(self, services: Services) -> Key:
        return (await self.keys(services))[0]

    async def verifying(self, services: Services, kid: str | None) -> KeySet:
        keys = await self.keys(services)
        if kid not in {k.kid for k in keys}:
            keys = await self.keys(services, refresh=True)
        return KeySet(keys)

    def forget(self) -> None:
        self._keys = []


KEYS = ProviderKeys()


class OAuthError(Exception):
    """An RFC 6749 §5.2 error of the token or userinfo endpoint."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(error)
        self.error, self.description, self.status = error, description, status

    def response(self) -> Response[Any]:
        headers = dict(NO_STORE)
        if self.status == 401:
            headers["www-authenticate"] = f'Bearer error="{self.error}"' if self.error == "invalid_token" \
                else 'Basic realm="kagi"'
        return Response({"error": self.error, "error_description": self.description}, status_code=self.status,
                        headers=headers)


def _oauth_error(_: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, OAuthError)
    return exc.response()


def _from_service(exc: ForwardedProblem) -> OAuthError:
    try:
        body = exc.response.json()
    except ValueError:
        body = {}
    code, title, status = str(body.get("code", "")), str(body.get("title", "")), exc.response.status_code
    if code == "oidc.invalid_client":
        return OAuthError("invalid_client", title, 401)
    if code == "oidc.invalid_grant":
        return OAuthError("invalid_grant", title)
    if status < 500:
        return OAuthError("invalid_request", title or "リクエストに誤りがあります。")
    return OAuthError("temporarily_unavailable", "ただいま処理できません。しばらくしてから再度お試しください。", 503)


def _permission(held: MyPermissionsOut, system: str) -> str | None:
    for row in held.permissions:
        if row.system == system and row.value:
            return row.value
    return None


async def _holder(services: Services, account_id: str, system: str) -> tuple[AccountOut, MyPermissionsOut] | None:
    """The account (active) and what it holds now; None when it may not use ``system``."""
    account = await services.lifecycle.account(account_id)
    if account.status != "active":
        return None
    caller = Caller(account_id=account_id, login_id=account.login_id, email=account.email,
                    roles=tuple(account.roles))
    held = await services.permissions.my_permissions(caller)
    if _permission(held, system) is None:
        return None
    return account, held


def _user_claims(account: AccountOut, held: MyPermissionsOut, system: str, scope: str) -> dict[str, Any]:
    claims: dict[str, Any] = {"kagi_system": system, "kagi_permission": _permission(held, system),
                              "kagi_company_id": held.company_id}
    scopes = scope.split()
    if "profile" in scopes:
        claims["preferred_username"] = account.login_id
        claims["kagi_login_id"] = account.login_id
    if "email" in scopes and account.email:
        claims["email"] = account.email
        claims["email_verified"] = True  # every address was proven by a mailed link or one-time password
    return claims


def _basic_credentials(request: Request[Any, Any, Any], form: dict[str, str]) -> tuple[str, str]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic" and value:
        try:
            raw = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            raise OAuthError("invalid_client", "クライアント認証に失敗しました。", 401) from None
        client_id, _, secret = raw.partition(":")
        return unquote_plus(client_id), unquote_plus(secret)  # RFC 6749 §2.3.1: form-encoded, then Basic
    return form.get("client_id", ""), form.get("client_secret", "")


class ProviderEndpoints(Controller):
    """Discovery, JWKS, token and userinfo: called by the target systems' servers."""

    path = "/"
    include_in_schema = False
    exception_handlers = {OAuthError: _oauth_error}  # noqa: RUF012 - Litestar's own attribute

    @get("/.well-known/openid-configuration", opt={"roles": PUBLIC})
    async def discovery(self, request: Request[Any, Any, Any]) -> dict[str, Any]:
        base = issuer(settings_of(request))
        return {
            "issuer": base,
            "authorization_endpoint": f"{base}/oidc/authorize",
            "token_endpoint": f"{base}/oidc/token",
            "userinfo_endpoint": f"{base}/oidc/userinfo",
            "jwks_uri": f"{base}/oidc/jwks",
            "end_session_endpoint": f"{base}/oidc/logout",
            "scopes_supported": list(SCOPES),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALG],
            "userinfo_signing_alg_values_supported": [],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": list(CLAIMS),
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "ui_locales_supported": ["ja"],
        }

    @get("/oidc/jwks", opt={"roles": PUBLIC}, media_type="application/jwk-set+json")
    async def jwks(self, services: NamedDependency[Services]) -> dict[str, Any]:
        keys = await KEYS.keys(services, refresh=True)  # fetched rarely (clients cache it); a rotation shows at once
        return dict(KeySet(keys).as_dict(private=False))

    @post("/oidc/token", opt={"roles": PUBLIC, "rate": "guess", "edge": True}, status_code=200)
    async def token(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[Any]:
        form = await form_of(request)
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "authorization_code のみ使用できます。")
        client_id, secret = _basic_credentials(request, form)
        missing = [n for n in ("code", "redirect_uri", "code_verifier") if not form.get(n)]
        if not client_id or not secret:
            raise OAuthError("invalid_client", "クライアント認証に失敗しました。", 401)
        if missing:
            raise OAuthError("invalid_request", f"{', '.join(missing)} が必要です。")
        try:
            grant = await services.lifecycle.redeem_code(CodeRedeemIn(
                client_id=client_id, client_secret=secret, code=form["code"], redirect_uri=form["redirect_uri"],
                code_verifier=form["code_verifier"]))
        except ForwardedProblem as exc:
            raise _from_service(exc) from None
        system = grant.client.system
        current = await SESSIONS.current(grant.account_id, settings_of(request))
        found = await _holder(services, grant.account_id, system)
        if current is None or current[1] != "active" or current[0] != grant.session_version or found is None:
            raise OAuthError("invalid_grant", "このIDではログインできません。")
        account, held = found
        now = int(time.time())
        ttl = settings_of(request).security.access_token_ttl_s
        key = await KEYS.signing(services)
        base = issuer(settings_of(request))
        access = jwt.encode({"alg": ALG, "kid": key.kid, "typ": "at+jwt"}, {
            "iss": base, "sub": grant.account_id, "aud": base, "client_id": client_id, "scope": grant.scope,
            "sv": grant.session_version, "iat": now, "exp": now + ttl, "jti": str(uuid.uuid4())}, key)
        id_claims = {"iss": base, "sub": grant.account_id, "aud": client_id, "azp": client_id, "iat": now,
                     "exp": now + ttl, "auth_time": int(grant.auth_time.timestamp()),
                     "at_hash": _half_hash(access),
                     **_user_claims(account, held, system, grant.scope)}
        if grant.nonce:
            id_claims["nonce"] = grant.nonce
        id_token = jwt.encode({"alg": ALG, "kid": key.kid, "typ": "JWT"}, id_claims, key)
        return Response({"access_token": access, "token_type": "Bearer", "expires_in": ttl, "id_token": id_token,
                         "scope": grant.scope}, headers=NO_STORE)

    @get("/oidc/userinfo", opt={"roles": PUBLIC, "edge": True})
    async def userinfo(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Response[Any]:
        return await _userinfo(request, services)

    @post("/oidc/userinfo", opt={"roles": PUBLIC, "edge": True}, status_code=200)
    async def userinfo_post(self, request: Request[Any, Any, Any],
                            services: NamedDependency[Services]) -> Response[Any]:
        return await _userinfo(request, services)


def _half_hash(token: str) -> str:
    """OpenID Connect Core §3.1.3.6 ``at_hash`` for RS256."""
    digest = hashlib.sha256(token.encode()).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode()


async def _userinfo(request: Request[Any, Any, Any], services: Services) -> Response[Any]:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise OAuthError("invalid_token", "アクセストークンが必要です。", 401)
    claims = await verify_access_token(token.strip(), services, settings_of(request))
    client = await services.lifecycle.oidc_client(str(claims["client_id"]))
    found = await _holder(services, str(claims["sub"]), client.system)
    if found is None:
        raise OAuthError("invalid_token", "このIDではログインできません。", 401)
    account, held = found
    return Response({"sub": claims["sub"], **_user_claims(account, held, client.system, str(claims["scope"]))},
                    headers=NO_STORE)


async def verify_access_token(token: str, services: Services, settings: Settings) -> dict[str, Any]:
    """A token this provider signed (any published key), unexpired, whose account's session is still the one it
    was issued in: a lock, purge, revoke or logout since then refuses it."""
    invalid = OAuthError("invalid_token", "アクセストークンが無効です。", 401)
    try:
        keys = await KEYS.verifying(services, extract_compact(token.encode()).headers().get("kid"))
        decoded = jwt.decode(token, keys, algorithms=[ALG])
        if decoded.header.get("typ") != "at+jwt":
            raise invalid  # an ID token is not an access token
        jwt.JWTClaimsRegistry(iss={"essential": True, "value": issuer(settings)}, exp={"essential": True},
                              sub={"essential": True}).validate(decoded.claims)
    except (JoseError, ValueError):
        raise invalid from None
    claims = decoded.claims
    current = await SESSIONS.current(str(claims["sub"]), settings)
    if current is None or current[1] != "active" or current[0] != claims.get("sv"):
        raise invalid
    return claims


# -- the browser side: authorization and logout (page routes: session cookie, CSRF, security headers) ---------------
def _refuse(request: Request[Any, Any, Any], message: str, status: int, code: str) -> Template:
    return message_page(request, "ログインできません", message, status, code)


def _back_to_client(redirect_uri: str, **params: str | None) -> Redirect:
    query = urlencode({k: v for k, v in params.items() if v is not None})
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return Redirect(path=f"{redirect_uri}{separator}{query}", status_code=303)


class ProviderPages(Controller):
    path = "/oidc"
    include_in_schema = False

    @get("/authorize", opt={"roles": PUBLIC})
    async def authorize(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        client_id, redirect_uri = params.get("client_id", ""), params.get("redirect_uri", "")
        try:
            client: ClientOut | None = await services.lifecycle.oidc_client(client_id or "-")
        except ForwardedProblem:
            client = None
        # Until client and redirect URI are known to match, nothing is sent back to the URI (RFC 6749 §4.1.2.1).
        if client is None or redirect_uri not in client.redirect_uris:
            return _refuse(request, "ログインを依頼したシステムが登録されていないか、戻り先が正しくありません。", 400,
                           "oidc.invalid_client")
        state = params.get("state")

        def error(code: str, description: str) -> Redirect:
            return _back_to_client(redirect_uri, error=code, error_description=description, state=state,
                                   iss=issuer(settings_of(request)))

        scope = params.get("scope", "").split()
        if params.get("response_type") != "code":
            return error("unsupported_response_type", "response_type=code only")
        if "openid" not in scope:
            return error("invalid_scope", "openid is required")
        if params.get("code_challenge_method") != "S256" or not 43 <= len(params.get("code_challenge", "")) <= 128:
            return error("invalid_request", "PKCE with S256 is required")
        if "request" in params or "request_uri" in params:
            return error("request_not_supported", "request objects are not supported")
        prompt = params.get("prompt", "").split()
        session = page_session(request)
        token = session.get("accessToken")
        caller = None
        if token:
            try:
                await authorize(request, _SIGNED_IN, str(token))
                caller = read_claims(str(token), settings_of(request).security)
            except Problem:
                session.rotate()  # the session ended (lock, logout elsewhere, expiry): sign in again
                caller = None
        if caller is None or session.get("passwordChange"):
            if "none" in prompt:
                return error("login_required", "the user is not signed in")
            return _to_login(request, session, params)
        if _needs_fresh_login(session, params, prompt):
            if "none" in prompt:
                return error("login_required", "a fresh login is required")
            return _to_login(request, session, params, fresh=True)
        if await _holder(services, caller.caller.account_id, client.system) is None:
            return _refuse(request, f"このIDには{client.system}の権限がないため、ログインできません。"
                                    "権限が必要な場合は、会社のシステム窓口責任者にお問い合わせください。", 403,
                           "oidc.no_permission")
        auth_time = float(session.get("authTime") or time.time())
        issued = await services.lifecycle.issue_code(CodeIn(
            client_id=client_id, account_id=caller.caller.account_id, redirect_uri=redirect_uri,
            code_challenge=params["code_challenge"], nonce=params.get("nonce"),
            scope=" ".join(s for s in scope if s in SCOPES),
            auth_time=datetime.fromtimestamp(int(auth_time), UTC), session_version=caller.session_version))
        session.data.pop("reauthFor", None)
        return _back_to_client(redirect_uri, code=issued.code, state=state, iss=issuer(settings_of(request)))

    @get("/logout", opt={"roles": PUBLIC})
    async def logout_form(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Template:
        """RP-initiated logout 1.0: the person confirms (a link alone must not end a session)."""
        params = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
        target = await _post_logout_target(services, params)
        return page("oidc_logout.html", request, target=target or "", state=params.get("state", ""),
                    client_id=params.get("client_id", ""), id_token_hint=params.get("id_token_hint", ""),
                    post_logout_redirect_uri=params.get("post_logout_redirect_uri", ""))

    @post("/logout", opt={"roles": PUBLIC}, status_code=303)
    async def logout(self, request: Request[Any, Any, Any], services: NamedDependency[Services]) -> Any:
        values = await form_of(request)
        session = page_session(request)
        token = session.get("accessToken")
        if token:
            try:
                claims = read_claims(str(token), settings_of(request).security)
                await services.lifecycle.logout(claims.caller, LogoutIn(refresh_token=session.get("refreshToken")))
                SESSIONS.forget(claims.caller.account_id)
            except (Problem, ForwardedProblem):
                pass  # an ended session is logged out all the same
        session.rotate()
        target = await _post_logout_target(services, values)
        if target:
            request.scope.setdefault("state", {})["form_action"] = _origin(target)
            return _back_to_client(target, state=values.get("state") or None)
        return message_page(request, "ログアウト", "ログアウトしました。", links=[("/login", "ログイン画面へ")])


class _SignedIn:
    """What ``authorize`` needs of a route: any signed-in role (the authorize endpoint itself is public)."""

    opt: ClassVar[dict[str, Any]] = {"roles": ANY_USER}


_SIGNED_IN: Any = _SignedIn()


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


async def _post_logout_target(services: Services, params: dict[str, str]) -> str | None:
    """``post_logout_redirect_uri`` only when registered for the client named (``client_id`` or the ID token's
    ``aud``, read without trusting it: it only selects whose registered list is checked)."""
    uri = params.get("post_logout_redirect_uri")
    if not uri:
        return None
    client_id = params.get("client_id")
    hint = params.get("id_token_hint")
    if not client_id and hint:
        try:
            keys = await KEYS.verifying(services, None)
            aud = jwt.decode(hint, keys, algorithms=[ALG]).claims.get("aud")
            client_id = aud if isinstance(aud, str) else None
        except (JoseError, ValueError):
            return None
    if not client_id:
        return None
    try:
        client = await services.lifecycle.oidc_client(client_id)
    except ForwardedProblem:
        return None
    return uri if uri in client.post_logout_redirect_uris else None


def _request_key(params: dict[str, str]) -> str:
    return hashlib.sha256(urlencode(sorted(params.items())).encode()).hexdigest()


def _needs_fresh_login(session: Any, params: dict[str, str], prompt: list[str]) -> bool:
    """``prompt=login`` or an ``auth_time`` older than ``max_age``, unless the person signed in again for this very
    request (the login page keeps ``reauthFor`` across its session rotation)."""
    auth_time = float(session.get("authTime") or 0)
    asked = session.get("reauthFor")
    if isinstance(asked, dict) and asked.get("key") == _request_key(params) and auth_time >= asked.get("at", 0):
        return False
    if "login" in prompt:
        return True
    max_age = params.get("max_age")
    if max_age is not None:
        try:
            return time.time() - auth_time > max(int(max_age), 0)
        except ValueError:
            return True
    return False


def _to_login(request: Request[Any, Any, Any], session: Any, params: dict[str, str], fresh: bool = False) -> Redirect:
    if fresh:
        session.data["reauthFor"] = {"key": _request_key(params), "at": time.time()}
    target = f"/oidc/authorize?{urlencode(params)}"
    return Redirect(path=f"/login?next={quote(target, safe='')}", status_code=303)


def authorize_origin(next_path: str) -> str | None:
    """The redirect URI origin an authorization request returns to (for the login page's ``form-action``)."""
    parts = urlsplit(next_path)
    if parts.path != "/oidc/authorize":
        return None
    uri = dict(parse_qsl(parts.query)).get("redirect_uri")
    return _origin(uri) if uri and urlsplit(uri).scheme in ("http", "https") else None
