"""The gateway: the only public HTTP entry. Authentication, roles, problem+json, request ids, OpenAPI.

It holds no business rules: every answer comes from a service's internal API.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import structlog
from litestar import Litestar, Request, Response, Router, get
from litestar.datastructures import MutableScopeHeaders
from litestar.di import Provide
from litestar.middleware import ASGIMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.openapi.spec import Components, SecurityScheme
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from kagi_gateway.controllers import CONTROLLERS
from kagi_gateway.deps import role_guard
from kagi_gateway.services import SERVICES, ForwardedProblem, Services
from kagi_shared.metrics import metrics_handler
from kagi_shared.problems import EXCEPTION_HANDLERS, Problem
from kagi_shared.service_api import RequestContextMiddleware
from kagi_shared.settings import Settings, get_settings


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


def _forwarded(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    assert isinstance(exc, ForwardedProblem)
    return exc.to_response(request.url.path)


def create_app(settings: Settings | None = None) -> Litestar:
    settings = settings or get_settings()
    state: dict[str, Services] = {}

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        state["services"] = Services(settings)
        try:
            yield
        finally:
            await state["services"].close()

    def services() -> Services:
        return state["services"]

    @get("/health", summary="The process is up", tags=["ops"])
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", summary="Every service and its infrastructure is reachable", tags=["ops"])
    async def ready() -> dict[str, Any]:
        checks = await asyncio.gather(*(state["services"].ready(name) for name in SERVICES))
        result = dict(zip(SERVICES, checks, strict=True))
        if not all(checks):
            down = ", ".join(name for name, ok in result.items() if not ok)
            raise Problem(503, "gateway.not_ready", "準備ができていません。", f"not ready: {down}",
                          extra={"services": result})
        return {"status": "ready", "services": result}

    api = Router("/", route_handlers=CONTROLLERS, guards=[role_guard])

    return Litestar(
        route_handlers=[health, ready, metrics_handler, api],
        dependencies={"services": Provide(services, sync_to_thread=False)},
        exception_handlers={**EXCEPTION_HANDLERS, ForwardedProblem: _forwarded},
        middleware=[RequestIdMiddleware(), RequestContextMiddleware("gateway")],
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
        ),
    )


def main() -> None:
    from kagi_shared.logging import configure_logging
    from kagi_shared.service_api import serve

    settings = get_settings()
    configure_logging("gateway", settings.log_level)
    structlog.contextvars.bind_contextvars(service="gateway")
    serve(create_app(settings), settings.ports.gateway, settings)
