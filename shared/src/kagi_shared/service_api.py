"""Building blocks of a service's internal HTTP API (called only by the gateway).

The gateway authenticates people; a service trusts the caller headers it forwards
only when the shared internal token is present (mTLS or a mesh does this in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import Any, Generic, Protocol, TypeVar

import msgspec
import structlog
import uvicorn
from litestar import Litestar, Request, Router, get
from litestar.config.app import AppConfig
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import ASGIMiddleware
from litestar.types import ASGIApp, Receive, Scope, Send

from kagi_shared.breaker import DATABASE
from kagi_shared.idempotency import SEAL_PURPOSE, IdempotencyMiddleware
from kagi_shared.logging import configure_logging, get_logger
from kagi_shared.metrics import api_metrics_port, name_process, observe_http, scrape_app
from kagi_shared.problems import Problem, exception_handlers, service_unavailable
from kagi_shared.sealing import Sealer
from kagi_shared.settings import Settings, get_settings, require_secrets
from kagi_shared.tracing import SpanKind, configure_tracing, mark_error, span
from kagi_shared.worker_probes import serve_probes

log = get_logger(__name__)

INTERNAL_TOKEN_HEADER = "x-internal-token"  # noqa: S105 - a header name


class Caller(msgspec.Struct, frozen=True, kw_only=True):
    account_id: str
    login_id: str
    email: str = ""
    roles: tuple[str, ...] = ()
    ip: str | None = None
    session_id: str | None = None
    """The login session (refresh token family) the call belongs to: step-up windows are bound to it."""

    def has(self, role: str) -> bool:
        return role in self.roles


def caller_headers(caller: Caller) -> dict[str, str]:
    headers = {
        "x-kagi-account-id": caller.account_id,
        "x-kagi-login-id": caller.login_id,
        "x-kagi-email": caller.email,
        "x-kagi-roles": ",".join(caller.roles),
    }
    if caller.ip:
        headers["x-kagi-client-ip"] = caller.ip
    if caller.session_id:
        headers["x-kagi-session-id"] = caller.session_id
    return headers


def caller_of(request: Request[Any, Any, Any]) -> Caller:
    account_id = request.headers.get("x-kagi-account-id")
    if not account_id:
        raise Problem(401, "auth.required", "ログインが必要です。")
    roles = tuple(r for r in request.headers.get("x-kagi-roles", "").split(",") if r)
    return Caller(account_id=account_id, login_id=request.headers.get("x-kagi-login-id", ""),
                  email=request.headers.get("x-kagi-email", ""), roles=roles,
                  ip=request.headers.get("x-kagi-client-ip"),
                  session_id=request.headers.get("x-kagi-session-id") or None)


def require_role(caller: Caller, *roles: str) -> None:
    if not any(caller.has(r) for r in roles):
        raise Problem(403, "auth.forbidden", "この操作を行う権限がありません。")


def caller_as(request: Request[Any, Any, Any], *roles: str) -> Caller:
    """The caller of ``request``, who must hold one of ``roles`` (401 without a caller, 403 without the role)."""
    caller = caller_of(request)
    require_role(caller, *roles)
    return caller


def correlation_of(request: Request[Any, Any, Any]) -> str | None:
    """The id every event and mail of this call carries: the request id the gateway gave it."""
    return request.headers.get("x-request-id")


Guard = Callable[[ASGIConnection[Any, Any, Any, Any], BaseRouteHandler], Awaitable[None]]


def internal_guard_for(expected: str) -> Guard:
    """The guard of every internal route: the caller must hold the shared internal token."""
    # A coroutine, though it never waits: Litestar runs a plain function guard on a worker thread, a hop
    # (thread hand-off, loop wake-up) per request that cost the APIs more CPU than the check itself.
    async def internal_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        given = connection.headers.get(INTERNAL_TOKEN_HEADER, "")
        # An API holding no credential (production, secret not mounted) must not take an empty header for one.
        if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Problem(401, "internal.unauthenticated", "内部 API の認証に失敗しました。")

    return internal_guard


class StatusRecorder:
    """``send`` for the app a middleware wraps: passes every message on and keeps the status it answered with."""

    def __init__(self, send: Send, status: int) -> None:
        self.send = send
        self.status = status
        """``status`` until the response starts."""

    async def __call__(self, message: Any) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class RequestContextMiddleware(ASGIMiddleware):
    """Binds the request id to every log line of the request, logs one access line, counts it in metrics."""

    def __init__(self, process: str, mounted: Sequence[str] = ()) -> None:
        self.process = process
        self.mounted = frozenset(mounted)
        """Services mounted under ``/<name>`` (the compact process): their requests are counted as ``<name>-api``,
        as their own process would count them, so dashboards read the same in either topology."""

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = dict(scope.get("headers") or [])
        request_id = headers.get(b"x-request-id", b"").decode() or None
        structlog.contextvars.bind_contextvars(request_id=request_id)
        started = time.perf_counter()
        sent = StatusRecorder(send, 0)
        traceparent = headers.get(b"traceparent", b"").decode() or None
        path = _loggable_path(scope)
        try:
            with span(f"{scope.get('method')} {scope.get('path_template') or path}", SpanKind.SERVER,
                      {"traceparent": traceparent} if traceparent else None,
                      {"http.request.method": str(scope.get("method")), "url.path": path}) as current:
                await next_app(scope, receive, sent)
                mark_error(current, sent.status)
        except (Problem, HTTPException) as refusal:
            # A refusal raised by a middleware (edge, guard) is answered by Litestar's handler outside this one.
            sent.status = sent.status or (refusal.status if isinstance(refusal, Problem) else refusal.status_code)
            raise
        except BaseException:
            # Anything else (a cancellation, a failure after the answer began) leaves the client with a broken
            # connection, so the log must say why.
            log.exception("http.failed", method=scope.get("method"), path=path, status=sent.status)
            raise
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("path_template") or "unmatched"
            prefix = str(scope.get("path", "")).split("/", 2)[1:2]
            process = f"{prefix[0]}-api" if prefix and prefix[0] in self.mounted else self.process
            observe_http(process, str(scope.get("method")), route, sent.status, elapsed)
            log.info("http.request", method=scope.get("method"), path=path, status=sent.status,
                     ms=round(elapsed * 1000, 1))
            structlog.contextvars.unbind_contextvars("request_id")


def _loggable_path(scope: Scope) -> str:
    """The request path for logs and traces; a route whose path holds a secret (a mailed link's token, declared
    with ``opt={"secret_path": True}``) is written as its template instead."""
    handler = scope.get("route_handler")
    if handler is not None and handler.opt.get("secret_path"):
        return str(scope.get("path_template") or "redacted")
    return str(scope.get("path"))


ReadyCheck = Callable[[], Awaitable[None]]
_PROBES = frozenset({"/health", "/ready"})


async def fail_fast_while_database_down(request: Request[Any, Any, Any]) -> None:
    """While the breaker is open, answer 503 at once rather than wait out server selection (probes still run)."""
    if DATABASE.open and request.url.path not in _PROBES:
        raise service_unavailable()


def health_handlers(ready: ReadyCheck) -> list[Any]:
    @get("/health", sync_to_thread=False, include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", include_in_schema=False)
    async def ready_handler() -> dict[str, str]:
        try:
            await ready()
        except Exception as exc:
            raise Problem(503, "service.not_ready", "準備ができていません。", str(exc)) from None
        return {"status": "ready"}

    return [health, ready_handler]


class _Database(Protocol):
    async def ping(self) -> None: ...

    @property
    def db(self) -> Any: ...


class _Service(Protocol):
    """What a service's composition root (``bootstrap.py``) gives its internal API."""

    @property
    def store(self) -> _Database: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


ServiceT = TypeVar("ServiceT", bound=_Service)


class RunningService(Generic[ServiceT]):
    """The service an internal API serves, read with ``running()`` by its handlers.

    A service given by the caller (a test's, or in-process ASGI without a lifespan run) serves at once and
    stays open after the app; otherwise ``build`` makes it when the app starts and it closes with the app.
    ``on_start`` runs once it has started (the state gauges register there)."""

    def __init__(self, given: ServiceT | None, build: Callable[[], ServiceT],
                 on_start: Callable[[], None] | None = None) -> None:
        self._given = given
        self._build = build
        self._on_start = on_start
        self._service = given

    def __call__(self) -> ServiceT:
        if self._service is None:
            raise RuntimeError("the service is built when its app starts")
        return self._service

    @contextlib.asynccontextmanager
    async def lifespan(self, _: Litestar) -> AsyncIterator[None]:
        service = self._service = self._given or self._build()
        await service.start()
        if self._on_start:
            self._on_start()
        try:
            yield
        finally:
            if self._given is None:
                await service.close()

    async def ready(self) -> None:
        """The app's ``/ready`` check: the service's database answers."""
        await self().store.ping()

    def database(self) -> Any:
        """The service's database (where its Idempotency-Key answers are stored)."""
        return self().store.db

    def api(self, name: str, route_handlers: Sequence[Any]) -> ServiceApi:
        """The internal API serving this service: ``route_handlers``, this lifespan and this ``/ready`` check."""
        return ServiceApi(name, route_handlers, ready=self.ready, lifespan=[self.lifespan], database=self.database)


@dataclass(frozen=True)
class ServiceApi:
    """One service's internal API, before it becomes an app: its routes (each behind the internal guard once
    mounted), the lifespan that builds and closes the service, and the check ``/ready`` runs. A process may
    mount one (``service_app``) or several side by side."""

    name: str
    route_handlers: Sequence[Any]
    ready: ReadyCheck
    lifespan: Sequence[Any] = ()
    database: Callable[[], Any] | None = None
    """The service's database, for the answers of requests sent with ``Idempotency-Key``; None: not honoured."""


def internal_router(api: ServiceApi, settings: Settings, path: str = "/") -> Router:
    """The service's routes under ``path``, the internal guard applied to all of them (probes are mounted outside).

    At the root the process is this service's own and holds its credential as ``internal_token``; mounted beside
    others (the compact process) each service's routes check the credential callers hold for that service."""
    expected = settings.security.internal_token if path == "/" else settings.internal_token_for(api.name)
    middleware: list[Callable[[ASGIApp], ASGIApp]] = []
    if api.database is not None and expected:
        database, sealer = api.database, Sealer(expected, SEAL_PURPOSE)
        middleware.append(lambda app: IdempotencyMiddleware(app, database, expected, sealer))
    return Router(path=path, route_handlers=list(api.route_handlers), guards=[internal_guard_for(expected)],
                  middleware=middleware)


def service_app(settings: Settings, *apis: ServiceApi) -> Litestar:
    """The Litestar app serving ``apis``: the internal guard on every route but the unguarded probes
    (``/health``, ``/ready``), the request id bound to logs, problem+json for every failure. ``/metrics`` is
    not here: ``run_service_api`` serves it on the API's own metrics port.

    One API is served at the root. Several are each served under ``/<name>`` (``/notify/internal/…``): two
    services may use the same path (``/internal/deliveries`` is both notify's and permissions')."""
    if not apis:
        raise ValueError("service_app needs at least one ServiceApi")
    name = "+".join(api.name for api in apis)
    # Mounted side by side, each service also answers its own probes under its prefix: a caller that watches
    # one service (the gateway's /ready asks each) finds it where ``Settings.service_url`` says it is.
    routers = [internal_router(apis[0], settings)] if len(apis) == 1 else [
        router for api in apis for router in (
            internal_router(api, settings, f"/{api.name}"),
            Router(path=f"/{api.name}", route_handlers=health_handlers(api.ready)))]

    async def ready() -> None:
        for api in apis:
            await api.ready()

    DATABASE.watch(ready)
    return Litestar(
        route_handlers=[*health_handlers(ready), *routers],
        exception_handlers=exception_handlers(),
        middleware=[RequestContextMiddleware(f"{name}-api", [api.name for api in apis] if len(apis) > 1 else ())],
        before_request=fail_fast_while_database_down,
        lifespan=[hook for api in apis for hook in api.lifespan],
        openapi_config=None,
        request_max_body_size=settings.http.max_body_bytes,
        on_app_init=[_name(name)],
    )


ServiceT_contra = TypeVar("ServiceT_contra", contravariant=True)
Given = TypeVar("Given")


class AppFactory(Protocol[ServiceT_contra]):
    """``create_app`` of a service's API module: the app over a given service (a test's), or one it builds."""

    def __call__(self, settings: Settings, service: ServiceT_contra | None = None, /) -> Litestar: ...


def api_entrypoints(name: str, service_api: Callable[[Settings, Given | None], ServiceApi]
                    ) -> tuple[AppFactory[Given], Callable[[], None]]:
    """``create_app`` and ``main`` of the service ``name``'s API module, from its ``service_api``: the app
    serving that API alone, and the process (``python -m kagi_<service>.entrypoints.api``) that runs it."""

    def create_app(settings: Settings, service: Given | None = None) -> Litestar:
        return service_app(settings, service_api(settings, service))

    def main() -> None:
        run_service_api(name, create_app)

    return create_app, main


def _name(name: str) -> Callable[[AppConfig], AppConfig]:
    def hook(config: AppConfig) -> AppConfig:
        config.state.update({"service": name})
        return config

    return hook


class QuietServer(uvicorn.Server):
    """uvicorn's server with its housekeeping tick once a second instead of ten times.

    uvicorn wakes every 0.1 s to refresh the Date header (once a second) and to see whether it should exit:
    0.15 % of a core per idle process, six processes. Here the tick comes once a second (the header stays as
    fresh) and a shutdown signal wakes the loop at once, so stopping is no slower.
    """

    _exit: asyncio.Event | None = None
    _loop: asyncio.AbstractEventLoop | None = None

    async def main_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._exit = asyncio.Event()
        counter = 0
        should_exit = await self.on_tick(counter)
        while not should_exit:
            counter = (counter + 10) % 864000  # on_tick refreshes the Date header when the counter is a multiple of 10
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._exit.wait(), 1.0)
            should_exit = await self.on_tick(counter)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        if self._loop is not None and self._exit is not None:
            self._loop.call_soon_threadsafe(self._exit.set)


def serve(app: Litestar, port: int, settings: Settings) -> None:
    # The modules and the app built so far live as long as the process. Frozen, they leave the collector's
    # view: a full collection walked ~90,000 such objects on the gateway and paused every request for
    # 40–75 ms (the login benchmark's /health p99); afterwards it walks only what requests allocate.
    gc.collect()
    gc.freeze()
    config = uvicorn.Config(app, host=settings.http.host, port=port, log_level="warning", access_log=False,
                            lifespan="on", timeout_graceful_shutdown=5,
                            timeout_keep_alive=settings.http.server_keep_alive_s)
    QuietServer(config).run()


def run_service_api(name: str, factory: Callable[[Settings], Litestar]) -> None:
    """The internal API process's composition root: settings are read here, once, and handed down. ``name`` is
    a service, or ``compact`` for the process hosting them all (``kagi_cli.compact``)."""
    settings = get_settings()
    require_secrets(settings, f"{name}-api")
    configure_logging(f"{name}-api", settings.log_level)
    name_process(f"{name}-api")
    configure_tracing(f"{name}-api", settings)
    app = factory(settings)
    if settings.ports.api_metrics_base:
        app.on_startup.append(lambda: serve_metrics(settings, name))
    serve(app, getattr(settings.ports, name), settings)


def serve_metrics(settings: Settings, name: str) -> None:
    """``/metrics`` on the API's own metrics port (base + offset), from a thread; never on the API port, which
    only the gateway may reach. Called at start-up, on the loop whose database the state gauges read."""
    port = api_metrics_port(settings, name)
    try:
        serve_probes(scrape_app(asyncio.get_running_loop()), settings.http.host, port)
    except OSError as exc:  # locally two checkouts may collide; in a pod the port is ours
        log.warning("api.metrics_port_busy", port=port, error=str(exc))
