"""The gateway: the only public HTTP entry. Authentication, roles, problem+json, request ids, OpenAPI.

It holds no business rules: every answer comes from a service's internal API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders, State
from litestar.di import Provide
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, Contact, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from kagi_gateway.audit import AuditPublisher, anonymous_caller, caller_in, is_audited
from kagi_gateway.controllers import CONTROLLERS
from kagi_gateway.deps import idempotency_guard, mark_replayed, provide_call, role_guard, settings_in
from kagi_gateway.edge import GUESSABLE, Edge, client_address
from kagi_gateway.openapi import document
from kagi_gateway.pages import PageMiddleware, page_response, pages_router, template_config
from kagi_gateway.provider import ProviderEndpoints
from kagi_gateway.services import SERVICES, ForwardedProblem, Services
from kagi_gateway.tokens import read_claims
from kagi_shared.problems import Problem, exception_handlers
from kagi_shared.service_api import RequestContextMiddleware, StatusRecorder
from kagi_shared.settings import SecuritySettings, Settings, get_settings, require_secrets


class RequestIdMiddleware(ASGIMiddleware):
    """Every request gets an id (the client's ``X-Request-ID`` if it sent a sane one), echoed back."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode(errors="replace")
        rid = given if 8 <= len(given) <= 64 and given.replace("-", "").isalnum() else str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = rid
        headers = [(k, v) for k, v in scope.get("headers", []) if k != b"x-request-id"]
        scope["headers"] = [*headers, (b"x-request-id", rid.encode())]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message)["X-Request-ID"] = rid
            await send(message)

        await next_app(scope, receive, send_with_id)


class EdgeMiddleware(ASGIMiddleware):
    """Client address, the abroad rule and rate limits for every API route and page, before guards and handlers."""

    def __init__(self, edge: Callable[[], Edge | None]) -> None:
        self.edge = edge

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        edge = self.edge()
        path = str(scope.get("path", ""))
        if edge is not None:
            headers = dict(scope.get("headers") or [])
            client = scope.get("client")
            peer = client[0] if client else None
            forwarded = headers.get(b"x-forwarded-for", b"").decode(errors="replace") or None
            address = client_address(peer, forwarded, edge.trusted)
            scope.setdefault("state", {})["client_ip"] = address
            handler = scope.get("route_handler")
            at_edge = handler is not None and (handler.opt.get("page") or handler.opt.get("edge"))
            if path.startswith("/api/") or at_edge:
                await edge.admit(address)
                route_class = handler.opt.get("rate", "default") if handler is not None else "default"
                if route_class == "login":
                    edge.refuse_failing_address(address)
                counted = edge.limit(route_class, address, _account_hint(headers, settings_in(scope).security))
                if route_class in GUESSABLE:
                    status, body = await self._give_back_unjudged(edge, route_class, counted, scope, receive, send,
                                                                  next_app)
                    if route_class == "login" and Edge.login_failed(status, body):
                        edge.record_login_failure(address)
                    return
        await next_app(scope, receive, send)

    @staticmethod
    async def _give_back_unjudged(edge: Edge, route_class: str, counted: list[str], scope: Scope,
                                  receive: Receive, send: Send, next_app: ASGIApp) -> tuple[int, bytes]:
        """Pass the call on; a guess no service could judge (503 ``service.unavailable``) is not counted.
        Returns the answer's status and (for a 401 or 503) the start of its body."""
        status = 0
        body = bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and status in (401, 503) and len(body) < 4096:
                body.extend(message.get("body", b""))
            await send(message)

        await next_app(scope, receive, watch)
        if Edge.unjudged(route_class, status, bytes(body)):
            edge.give_back(counted)
        return status, bytes(body)


def _account_hint(headers: dict[bytes, bytes], security: SecuritySettings) -> str | None:
    """The account a bearer token names, for per-account limits; the guard still checks everything."""
    scheme, _, token = headers.get(b"authorization", b"").decode(errors="replace").partition(" ")
    if scheme.lower() != "bearer" or not token:
        return None
    try:
        return str(read_claims(token.strip(), security).caller.account_id)
    except Problem:
        return None


class AuditMiddleware(ASGIMiddleware):
    """Records admin and operator actions, failed logins and 401/403 answers once the status is known."""

    def __init__(self, publisher: Callable[[], AuditPublisher | None]) -> None:
        self.publisher = publisher

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        sent = StatusRecorder(send, 500)
        try:
            await next_app(scope, receive, sent)
        finally:
            status = sent.status
            caller = caller_in(scope)
            method, path = str(scope.get("method")), str(scope.get("path"))
            publisher = self.publisher()
            if publisher is not None and is_audited(caller, method, path, status):
                publisher.record(caller or anonymous_caller(scope), method, str(scope.get("path_template") or path),
                                 path, status, scope.get("state", {}).get("request_id"))


def _forwarded(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ForwardedProblem)
    return exc.to_response(request.url.path)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["services"] = Services(settings)
        state["audit"] = AuditPublisher(settings)
        state["audit"].start()
        state["edge"] = Edge(settings.edge, state["services"].ip_allowlist)
        try:
            yield
        finally:
            await state["audit"].close()
            await state["services"].close()

    def services() -> Services:
        services: Services = state["services"]
        return services

    @get("/health", summary="The process is up", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Every service and its infrastructure is reachable", tags=["ops"], opt={"problems": (503,)})
    async def ready() -> dict[str, Any]:
        checks = await asyncio.gather(*(state["services"].ready(name) for name in SERVICES))
        result = dict(zip(SERVICES, checks, strict=True))
        if not all(checks):
            down = ", ".join(name for name, ok in result.items() if not ok)
            raise Problem(503, "gateway.not_ready", "準備ができていません。", f"not ready: {down}",
                          extra={"services": result})
        return {"status": "ready", "services": result}

    api = Router("/", route_handlers=CONTROLLERS, guards=[role_guard, idempotency_guard], after_request=mark_replayed)

    app = Litestar(
        route_handlers=[health, ready, api, ProviderEndpoints, pages_router()],
        template_config=template_config(),
        before_send=[page_response],
        state=State({"settings": settings}),
        dependencies={"services": Provide(services, sync_to_thread=False),
                      "call": Provide(provide_call, sync_to_thread=False)},
        exception_handlers={**exception_handlers(), ForwardedProblem: _forwarded},
        middleware=[RequestIdMiddleware(), RequestContextMiddleware("gateway"), PageMiddleware(),
                    EdgeMiddleware(lambda: state.get("edge")), AuditMiddleware(lambda: state.get("audit"))],
        lifespan=[lifespan],
        request_max_body_size=settings.http.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="Kagi gateway",
            version="0.1.0",
            path="/schema",
            render_plugins=[SwaggerRenderPlugin()],
            components=Components(security_schemes={
                "bearer": SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")}),
            security=[{"bearer": []}],
            contact=Contact(name="Kagi", url="https://kagi.example.jp/", email="kagi@kagi.example.jp"),
            description="The public API of Kagi. Every failure is `application/problem+json` (RFC 9457) with a "
                        "stable `code`; times are UTC (RFC 3339).",
        ),
    )
    document(app)
    return app


def main() -> None:
    from prometheus_client import start_http_server

    from kagi_shared.logging import configure_logging
    from kagi_shared.metrics import name_process
    from kagi_shared.service_api import serve
    from kagi_shared.tracing import configure_tracing

    settings = get_settings()
    require_secrets(settings, "gateway")
    configure_logging("gateway", settings.log_level)
    name_process("gateway")
    if settings.ports.gateway_metrics:  # the public port never serves them
        try:
            start_http_server(settings.ports.gateway_metrics, addr=settings.http.host)
        except OSError as exc:  # a second local system on one machine: serve without metrics, as workers do
            structlog.get_logger(__name__).warning("gateway.metrics_port_busy", port=settings.ports.gateway_metrics,
                                                   error=str(exc))
    configure_tracing("gateway", settings)
    structlog.contextvars.bind_contextvars(service="gateway")
    serve(create_app(settings), settings.ports.gateway, settings)
