"""Page sessions, CSRF and the headers every page carries.

The cookie holds only a random session id (HttpOnly, SameSite=Lax, Secure outside local dev); the access and refresh
tokens, the CSRF token and a flow's state stay in the gateway's memory, so a stolen page never shows a token and a
script cannot read one. The id changes at login and logout (no session fixation). One gateway process keeps its own
sessions: several replicas need sticky sessions (a lost session only means logging in again).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.datastructures import MutableScopeHeaders
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from kagi_gateway.deps import PUBLIC, authorize, settings_in
from kagi_shared.problems import Problem
from kagi_shared.settings import Settings

COOKIE = "kagi_session"
CSRF_FIELD = "csrf"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
IDLE_TTL_S = 30 * 60
MAX_SESSIONS = 100_000

SECURITY_HEADERS = {
    # No script at all; styles only from the gateway's own stylesheet; forms post only to the gateway.
    "content-security-policy": ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                                "frame-ancestors 'none'; base-uri 'none'"),
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",  # link tokens are in page URLs
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
}

CROSS_SITE = ("page.cross_site", "他のサイトからの送信は受け付けられません。")
CSRF_INVALID = ("page.csrf_invalid", "画面の有効期限が切れました。もう一度最初から操作してください。")


class PageSession:
    def __init__(self, sid: str, data: dict[str, Any]) -> None:
        self.id = sid
        self.data = data

    @property
    def csrf(self) -> str:
        return str(self.data[CSRF_FIELD])

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def rotate(self, **data: Any) -> None:
        """A new id and CSRF token (login, logout); ``data`` is all it keeps."""
        self.id = secrets.token_urlsafe(32)
        self.data = {CSRF_FIELD: secrets.token_urlsafe(32), **data}


class SessionStore:
    """Sessions in memory, dropped after 30 idle minutes; the oldest go first when the store is full."""

    def __init__(self, ttl_s: float = IDLE_TTL_S, max_sessions: int = MAX_SESSIONS) -> None:
        self.ttl_s = ttl_s
        self.max_sessions = max_sessions
        self._sessions: dict[str, tuple[float, dict[str, Any]]] = {}

    def open(self, sid: str | None) -> PageSession:
        now = time.monotonic()
        found = self._sessions.pop(sid, None) if sid else None
        if found is not None and found[0] > now:
            return PageSession(str(sid), found[1])
        session = PageSession("", {})
        session.rotate()
        return session

    def save(self, session: PageSession, old_id: str | None) -> None:
        if old_id and old_id != session.id:
            self._sessions.pop(old_id, None)
        while len(self._sessions) >= self.max_sessions:
            self._sessions.pop(next(iter(self._sessions)))
        self._sessions[session.id] = (time.monotonic() + self.ttl_s, session.data)


STORE = SessionStore()


def page_session(connection: ASGIConnection[Any, Any, Any, Any]) -> PageSession:
    session = connection.scope.get("state", {}).get("page_session")
    assert isinstance(session, PageSession), "page routes run behind PageMiddleware"
    return session


def _cookie_id(scope: Scope) -> str | None:
    for name, value in scope.get("headers") or []:
        if name == b"cookie":
            for part in value.decode("latin-1").split(";"):
                key, _, sid = part.strip().partition("=")
                if key == COOKIE and sid:
                    return sid
    return None


class PageMiddleware(ASGIMiddleware):
    """For page routes: opens the page session before the edge and the guard (``page_response`` stores it)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        handler = scope.get("route_handler")
        if handler is not None and handler.opt.get("page"):
            old_id = _cookie_id(scope)
            state = scope.setdefault("state", {})
            state["page_session"], state["page_session_old_id"] = STORE.open(old_id), old_id
        await next_app(scope, receive, send)


async def page_response(message: Message, scope: Scope) -> None:
    """The app's before-send hook, so every answer of a page carries it, a refusal by the edge or an error too:
    store the session, set its cookie when its id is new, add the security headers."""
    if message["type"] != "http.response.start":
        return
    state = scope.get("state", {})
    session = state.get("page_session")
    if not isinstance(session, PageSession):
        return
    old_id = state.get("page_session_old_id")
    STORE.save(session, old_id)
    headers = MutableScopeHeaders.from_message(message)
    for name, value in SECURITY_HEADERS.items():
        headers[name] = value
    extra = state.get("form_action")
    origins = [extra] if isinstance(extra, str) else list(extra or [])
    origins = [o for o in origins if isinstance(o, str) and o.startswith(("https://", "http://"))
               and not any(c in o for c in " ;,'\"")]
    if origins:
        # A form whose answer redirects to another site (a relying party after the OpenID Provider's login or
        # logout, an external provider when linking): Chrome applies form-action to every redirect it leads to.
        headers["content-security-policy"] = SECURITY_HEADERS["content-security-policy"].replace(
            "form-action 'self'", "form-action 'self' " + " ".join(dict.fromkeys(origins)))
    if state.get("page_script"):  # a page with the copy button: the site's own script file, nothing inline
        headers["content-security-policy"] = headers["content-security-policy"] + "; script-src 'self'"
    if session.id != old_id:
        secure = "; Secure" if _secure_cookie(settings_in(scope)) else ""
        headers.add("set-cookie", f"{COOKIE}={session.id}; Path=/; HttpOnly; SameSite=Lax{secure}")


def _secure_cookie(settings: Settings) -> bool:
    return settings.env == "prod" or settings.brand.portal_url.startswith("https://")


class LoginRequired(Exception):
    """A page for signed-in people was opened without a live session: the page answers with the login page."""

    def __init__(self, problem: Problem | None = None) -> None:
        super().__init__(problem.code if problem else "auth.required")
        self.problem = problem


async def page_guard(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
    """Every form post comes from this site with the session's CSRF token; signed-in pages need a live session
    checked by the same rule as the API's bearer tokens."""
    roles = handler.opt.get("roles")
    if roles is None:
        raise Problem(403, "auth.route_undeclared", "この操作を行う権限がありません。")
    session = page_session(connection)
    if connection.scope.get("method", "GET") not in SAFE_METHODS:
        await _check_same_site(connection, session)
    if tuple(roles) == PUBLIC:
        return
    token = session.get("accessToken")
    if not token:
        raise LoginRequired()
    try:
        await authorize(connection, handler, str(token))
    except Problem as refused:
        if refused.code == "auth.forbidden":
            raise
        if refused.code in ("auth.password_change_required", "auth.totp_enrolment_required"):
            raise LoginRequired(refused) from None  # the session stays: its token opens the page that is needed
        session.rotate()  # an ended or expired session: its tokens are of no further use
        raise LoginRequired(refused) from None


async def _check_same_site(connection: ASGIConnection[Any, Any, Any, Any], session: PageSession) -> None:
    # The browser's word on where the post came from; Origin is "null" for our own forms (no-referrer policy).
    site = connection.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        raise Problem(403, *CROSS_SITE)
    origin = connection.headers.get("origin")
    if origin not in (None, "null") and origin.split("://", 1)[-1] != connection.headers.get("host", ""):
        raise Problem(403, *CROSS_SITE)
    form = await Request[Any, Any, Any](connection.scope, connection.receive).form()
    sent = form.get(CSRF_FIELD)
    if not isinstance(sent, str) or not hmac.compare_digest(sent.encode(), session.csrf.encode()):
        raise Problem(403, *CSRF_INVALID)
