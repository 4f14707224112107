"""Who is calling: the bearer token, checked by one guard against the roles each route declares.

Every route sets ``opt={"roles": (...)}``: ``("public",)`` for anonymous routes, otherwise
the roles allowed. A route without the declaration is refused, so none is open by accident.

A token also carries the account's session version (``sv``). The guard compares it with
lifecycle's current one (cached a few seconds per account) so a lock, a purge or a password
change ends existing sessions: a stale token gets ``auth.session_ended``. The roles the guard
judges come from that same answer of lifecycle, never from the token alone: a token signed with a
leaked key, or issued before a role was taken away, cannot widen what its account may do. A token restricted to
the password change (login with an expired password) opens only routes declaring
``opt={"password_change": True}``.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx
import msgspec
from litestar import Request
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler

from kagi_gateway.services import Services, count_call
from kagi_gateway.tokens import PASSWORD_CHANGE_SCOPE, TOTP_ENROLMENT_SCOPE, read_claims
from kagi_shared.contracts.audit import AuditClient
from kagi_shared.contracts.invite import InviteClient
from kagi_shared.contracts.lifecycle import LifecycleClient, SessionOut
from kagi_shared.contracts.notify import NotifyClient
from kagi_shared.contracts.permissions import PermissionsClient
from kagi_shared.idempotency import HEADER as IDEMPOTENCY_KEY
from kagi_shared.idempotency import OUTGOING, REPLAYED_HEADER, Outgoing, invalid_key, key_problem
from kagi_shared.problems import Problem, service_unavailable
from kagi_shared.service_api import INTERNAL_TOKEN_HEADER, Caller
from kagi_shared.settings import Settings

S = TypeVar("S", bound=msgspec.Struct)

PUBLIC = ("public",)
ANY_USER = ("owner", "viewer", "company_admin", "operator", "target_system", "support", "system_user")
MAX_SESSION_CACHE_TTL_S = 5.0


def settings_in(scope: Any) -> Settings:
    """The settings the gateway was built with (``create_app(settings)``), from a request's ASGI scope."""
    settings: Settings = scope["litestar_app"].state["settings"]
    return settings


def settings_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Settings:
    return settings_in(connection.scope)

SESSION_ENDED = ("auth.session_ended", "セッションが終了しました。再度ログインしてください。")
PASSWORD_CHANGE_REQUIRED = ("auth.password_change_required",
                            "パスワードの有効期限が切れています。パスワードを変更してください。")
TOTP_ENROLMENT_REQUIRED = ("auth.totp_enrolment_required",
                           "2 段階認証 (認証アプリのワンタイムパスワード) の登録が必要です。"
                           "登録してから再度ログインしてください。")
# A restricted token opens only the routes that declare its scope in ``opt`` (``opt={"totp_enrolment": True}``).
SCOPE_REFUSALS = {PASSWORD_CHANGE_SCOPE: PASSWORD_CHANGE_REQUIRED, TOTP_ENROLMENT_SCOPE: TOTP_ENROLMENT_REQUIRED}


def client_ip(connection: ASGIConnection[Any, Any, Any, Any]) -> str | None:
    """The client's address as the edge resolved it (trusted proxies' X-Forwarded-For), else the peer."""
    resolved = connection.scope.get("state", {}).get("client_ip")
    if resolved:
        return str(resolved)
    return connection.client.host if connection.client else None


SESSION_ROUTE = "/internal/accounts/{account_id}/session"


class SessionVersions:
    """Lifecycle's current session version and status per account, cached for at most 5 seconds."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[float, tuple[int, str, tuple[str, ...]] | None]] = {}
        self._clients: dict[tuple[int, str, str], httpx.AsyncClient] = {}

    def _client(self, settings: Settings) -> httpx.AsyncClient:
        # Keyed by where and with which credential too: an app built with other settings (a rotated internal
        # token, another lifecycle address) must not reuse a client made for the previous ones.
        key = (id(asyncio.get_running_loop()), settings.service_url("lifecycle"),
               settings.internal_token_for("lifecycle"))
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(
                base_url=settings.service_url("lifecycle"),
                timeout=httpx.Timeout(settings.http.service_timeout_s, connect=1.0),
                limits=httpx.Limits(keepalive_expiry=settings.http.client_keep_alive_s),
                headers={INTERNAL_TOKEN_HEADER: settings.internal_token_for("lifecycle")})
            self._clients = {key: client}  # one loop and one setting per gateway process; a change replaces it
        return client

    async def _get_session(self, account_id: str, settings: Settings) -> httpx.Response:
        path = f"/internal/accounts/{account_id}/session"
        count_call("GET", SESSION_ROUTE)
        try:
            return await self._client(settings).get(path)
        except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
            # A pooled connection the server dropped (restart, idle close): a read is safe to send once more.
            count_call("GET", SESSION_ROUTE)
            return await self._client(settings).get(path)

    def forget(self, account_id: str) -> None:
        self._cache.pop(account_id, None)

    async def current(self, account_id: str, settings: Settings) -> tuple[int, str, tuple[str, ...]] | None:
        """(session version, status, roles), or None when lifecycle does not know the account."""
        now = time.monotonic()
        cached = self._cache.get(account_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        try:
            reply = await self._get_session(account_id, settings)
        except httpx.HTTPError:
            # Fail closed: a session that cannot be checked is not honoured.
            raise service_unavailable("lifecycle") from None
        if reply.status_code == 404:
            value = None
        elif reply.status_code == 200:
            found = msgspec.json.decode(reply.content, type=SessionOut)
            value = (found.session_version, found.status, tuple(found.roles))
        else:
            raise service_unavailable("lifecycle")
        if len(self._cache) > 50_000:
            self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
        ttl = min(settings.lifecycle.session_cache_ttl_s, MAX_SESSION_CACHE_TTL_S)
        self._cache[account_id] = (now + ttl, value)
        return value


SESSIONS = SessionVersions()


async def role_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    roles = handler.opt.get("roles")
    if roles is None:
        raise Problem(403, "auth.route_undeclared", "この操作を行う権限がありません。")
    if tuple(roles) == PUBLIC:
        return
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Problem(401, "auth.required", "ログインが必要です。", headers={"WWW-Authenticate": "Bearer"})
    await authorize(connection, handler, token.strip())


async def authorize(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler, token: str) -> None:
    """The access token's caller may use the route (roles, restricted scope, live session); the caller is put where
    ``current_caller`` finds it. One rule for the JSON API (bearer header) and the pages (server-side session)."""
    roles = tuple(handler.opt.get("roles") or ())
    settings = settings_of(connection)
    claims = read_claims(token, settings.security)
    caller = claims.caller
    # Whom a refusal below is recorded against (the audit of 401/403 answers): the token's signature held.
    connection.scope.setdefault("state", {})["token_caller"] = caller
    if not any(caller.has(r) for r in roles):  # cheap refusal before asking lifecycle
        raise Problem(403, "auth.forbidden", "この操作を行う権限がありません。")
    if claims.scope and not handler.opt.get(claims.scope):
        raise Problem(403, *SCOPE_REFUSALS.get(claims.scope, SESSION_ENDED))
    current = await SESSIONS.current(caller.account_id, settings)
    if current is not None and claims.session_version > current[0]:
        # A token newer than the cached version was issued after the bump (a login right after a password reset):
        # the cache is stale, not the token.
        SESSIONS.forget(caller.account_id)
        current = await SESSIONS.current(caller.account_id, settings)
    if current is None or current[1] != "active" or claims.session_version != current[0]:
        raise Problem(401, *SESSION_ENDED, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
    held = tuple(r for r in caller.roles if r in current[2])
    if not any(r in held for r in roles):
        raise Problem(403, "auth.forbidden", "この操作を行う権限がありません。")
    connection.scope.setdefault("state", {})["caller"] = Caller(
        account_id=caller.account_id, login_id=caller.login_id, email=caller.email, roles=held,
        ip=client_ip(connection), session_id=caller.session_id)


async def idempotency_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """A route declaring ``opt={"idempotent": True}`` takes an ``Idempotency-Key``: checked here, then sent with
    every call the route makes (``Services.send``), with the client's address for an anonymous caller (whom a
    stored answer belongs to). Elsewhere the header is ignored, as before."""
    key = connection.headers.get(IDEMPOTENCY_KEY) if handler.opt.get("idempotent") else None
    if key is not None and (reason := key_problem(key)):
        OUTGOING.set(None)
        raise invalid_key(reason)
    OUTGOING.set(None if key is None else Outgoing(key, client_ip(connection)))


async def mark_replayed(response: Any) -> Any:
    """The client learns that the answer is the stored one of an earlier attempt (``Idempotent-Replayed``).

    A coroutine so that Litestar calls it on the loop: a plain function hook runs on a worker thread."""
    outgoing = OUTGOING.get()
    if outgoing is not None and outgoing.replayed:
        response.headers[REPLAYED_HEADER] = "true"
    return response


def current_caller(request: Request[Any, Any, Any]) -> Caller:
    caller = request.scope.get("state", {}).get("caller")
    if caller is None:  # only reachable if a public route asks for a caller: a programming error
        raise Problem(401, "auth.required", "ログインが必要です。")
    assert isinstance(caller, Caller)
    return caller


def from_client(request: Request[Any, Any, Any], internal: type[S], public: msgspec.Struct) -> S:
    """A public request as the service's internal one: the same fields, and the client's address as the edge
    resolved it (the service's rate limits count by it)."""
    return internal(**msgspec.structs.asdict(public), client_ip=client_ip(request))


def portal_url(settings: Settings, path: str = "") -> str:
    """An address on the portal (the site people open from the mails), for answers that send them there."""
    return settings.brand.portal_url.rstrip("/") + path


def request_id(request: Request[Any, Any, Any]) -> str | None:
    value = request.scope.get("state", {}).get("request_id")
    return str(value) if value else None


@dataclass(frozen=True, slots=True)
class Call:
    """One API request on its way to the services: the request (its caller and id) and the typed clients, so that a
    route is the one client method it forwards to (``await call.invite.keys(call.caller, rid=call.rid)``). Routes
    take it as ``call: NamedDependency[Call]``; a page runs the same handler with one it builds (``forms.operate``)."""

    request: Request[Any, Any, Any]
    lifecycle: LifecycleClient
    invite: InviteClient
    permissions: PermissionsClient
    notify: NotifyClient
    audit: AuditClient

    @classmethod
    def of(cls, services: Services, request: Request[Any, Any, Any]) -> Call:
        return cls(request, services.lifecycle, services.invite, services.permissions, services.notify,
                   services.audit)

    @property
    def caller(self) -> Caller:
        """The admitted caller (asked for only by routes with roles: a public route has none)."""
        return current_caller(self.request)

    @property
    def rid(self) -> str | None:
        return request_id(self.request)

    @property
    def settings(self) -> Settings:
        return settings_of(self.request)

    def from_client(self, internal: type[S], public: msgspec.Struct) -> S:
        return from_client(self.request, internal, public)


def provide_call(services: Services, request: Request[Any, Any, Any]) -> Call:
    return Call.of(services, request)
