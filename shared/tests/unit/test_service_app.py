"""The service-app factory: one internal guard over every route a service declares, probes left open."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from litestar import Request, get
from litestar.concurrency import set_asyncio_executor
from litestar.testing import AsyncTestClient

from kagi_shared.service_api import (
    INTERNAL_TOKEN_HEADER,
    Caller,
    ServiceApi,
    api_entrypoints,
    caller_as,
    caller_headers,
    correlation_of,
    service_app,
)
from kagi_shared.settings import Settings, load_settings

TOKEN = "s3cret-internal-token"  # noqa: S105 - a test's credential


def settings_with(token: str) -> Settings:
    base = load_settings()
    return msgspec.structs.replace(base, security=msgspec.structs.replace(base.security, internal_token=token))


def api(name: str, path: str, ready_calls: list[str]) -> ServiceApi:
    @get(path, sync_to_thread=False)
    def handler(request: Request[Any, Any, Any]) -> dict[str, str | None]:
        return {"service": name, "correlation": correlation_of(request)}

    async def ready() -> None:
        ready_calls.append(name)

    return ServiceApi(name, [handler], ready=ready)


async def test_every_route_needs_the_internal_token_and_probes_do_not() -> None:
    settings = settings_with("s3cret-internal-token")
    calls: list[str] = []
    app = service_app(settings, api("one", "/internal/one", calls))
    async with AsyncTestClient(app=app) as http:
        refused = await http.get("/internal/one")
        assert refused.status_code == 401
        assert refused.json()["code"] == "internal.unauthenticated"
        assert refused.headers["content-type"].startswith("application/problem+json")
        wrong = await http.get("/internal/one", headers={INTERNAL_TOKEN_HEADER: "s3cret-internal-tokem"})
        assert wrong.status_code == 401
        ok = await http.get("/internal/one", headers={INTERNAL_TOKEN_HEADER: "s3cret-internal-token",
                                                      "x-request-id": "req-42"})
        assert ok.status_code == 200 and ok.json() == {"service": "one", "correlation": "req-42"}
        assert (await http.get("/health")).status_code == 200
        assert (await http.get("/ready")).status_code == 200 and calls == ["one"]
        assert (await http.get("/metrics")).status_code == 404  # served on the metrics port, never here
        missing = await http.get("/internal/none", headers={INTERNAL_TOKEN_HEADER: "s3cret-internal-token"})
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert (await http.get("/internal/none")).status_code == 404  # as before: no route, no guard to refuse
        assert (await http.post("/internal/one")).status_code == 405


class CountingExecutor(ThreadPoolExecutor):
    """The pool Litestar hands plain-function guards, hooks and handlers to; counts what it is given."""

    def __init__(self) -> None:
        super().__init__(max_workers=1)
        self.submitted: list[str] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.submitted.append(repr(fn)[:200])
        return super().submit(fn, *args, **kwargs)


def test_an_internal_request_is_served_on_the_event_loop_without_a_worker_thread() -> None:
    """Every internal call passes the guard; a plain-function guard would cost each one a thread hand-off."""
    async def requests() -> None:
        app = service_app(settings_with(TOKEN), api("one", "/internal/one", []))
        async with AsyncTestClient(app=app) as http:
            assert (await http.get("/internal/one", headers={INTERNAL_TOKEN_HEADER: TOKEN})).status_code == 200
            assert (await http.get("/internal/one")).status_code == 401

    pool = CountingExecutor()
    set_asyncio_executor(pool)  # Litestar allows this only outside a running loop: the test runs its own
    try:
        asyncio.run(requests())
    finally:
        set_asyncio_executor(None)
        pool.shutdown()
    assert pool.submitted == []


async def test_an_api_holding_no_token_refuses_an_empty_header() -> None:
    app = service_app(settings_with(""), api("one", "/internal/one", []))
    async with AsyncTestClient(app=app) as http:
        assert (await http.get("/internal/one", headers={INTERNAL_TOKEN_HEADER: ""})).status_code == 401


async def test_several_services_share_one_app_each_under_its_name_behind_the_guard() -> None:
    settings = settings_with("tok")
    calls: list[str] = []
    # The same path in two services (as /internal/deliveries is in notify and permissions).
    app = service_app(settings, api("one", "/internal/same", calls), api("two", "/internal/same", calls))
    async with AsyncTestClient(app=app) as http:
        assert (await http.get("/two/internal/same")).status_code == 401
        two = await http.get("/two/internal/same", headers={INTERNAL_TOKEN_HEADER: "tok"})
        one = await http.get("/one/internal/same", headers={INTERNAL_TOKEN_HEADER: "tok"})
        assert (one.json()["service"], two.json()["service"]) == ("one", "two")
        assert (await http.get("/ready")).status_code == 200 and calls == ["one", "two"]
        assert (await http.get("/two/ready")).status_code == 200 and calls == ["one", "two", "two"]
        assert (await http.get("/one/health")).status_code == 200
    # Counted as each service's own API process would count them, so dashboards read the same in either topology.
    from kagi_shared.metrics import HTTP_REQUESTS

    counted = {s.labels["process"] for m in HTTP_REQUESTS.collect() for s in m.samples
               if s.labels.get("route", "").endswith("/internal/same")}
    assert counted == {"one-api", "two-api"}


async def test_mounted_side_by_side_each_service_checks_the_credential_callers_hold_for_it() -> None:
    """The compact process hosts every API; in production the gateway sends each service its own credential
    (``internal_token_<service>``), so a service's routes must not open to another service's credential."""
    base = settings_with("shared")
    settings = msgspec.structs.replace(base, security=msgspec.structs.replace(
        base.security, internal_token_lifecycle="lifecycle-only", internal_token_audit="audit-only"))  # noqa: S106
    app = service_app(settings, api("lifecycle", "/internal/x", []), api("audit", "/internal/x", []))
    async with AsyncTestClient(app=app) as http:
        async def status(path: str, token: str) -> int:
            return (await http.get(path, headers={INTERNAL_TOKEN_HEADER: token})).status_code

        assert await status("/lifecycle/internal/x", "audit-only") == 401
        assert await status("/lifecycle/internal/x", "shared") == 401
        ok = await http.get("/lifecycle/internal/x", headers={INTERNAL_TOKEN_HEADER: "lifecycle-only"})
        assert ok.status_code == 200 and ok.json()["service"] == "lifecycle"
        assert await status("/audit/internal/x", "audit-only") == 200


async def test_caller_as_names_the_caller_only_when_it_holds_one_of_the_roles() -> None:
    @get("/internal/mine", sync_to_thread=False)
    def mine(request: Request[Any, Any, Any]) -> dict[str, str]:
        return {"account": caller_as(request, "owner", "viewer").account_id}

    async def ready() -> None:
        return None

    app = service_app(settings_with(TOKEN), ServiceApi("one", [mine], ready=ready))
    async with AsyncTestClient(app=app) as http:
        anonymous = await http.get("/internal/mine", headers={INTERNAL_TOKEN_HEADER: TOKEN})
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "auth.required"
        for roles, status in ((("operator",), 403), (("viewer",), 200), (("owner", "operator"), 200)):
            headers = caller_headers(Caller(account_id="acc-1", login_id="L1", roles=roles))
            answer = await http.get("/internal/mine", headers={INTERNAL_TOKEN_HEADER: TOKEN, **headers})
            assert answer.status_code == status
            if status == 200:
                assert answer.json() == {"account": "acc-1"}
            else:
                assert answer.json()["code"] == "auth.forbidden"


async def test_api_entrypoints_serve_the_given_service_alone_at_the_root() -> None:
    built: list[str | None] = []

    def one_api(settings: Settings, given: str | None = None) -> ServiceApi:
        built.append(given)
        return api("one", "/internal/one", [])

    create_app, _ = api_entrypoints("one", one_api)
    async with AsyncTestClient(app=create_app(settings_with(TOKEN), "the test's service")) as http:
        ok = await http.get("/internal/one", headers={INTERNAL_TOKEN_HEADER: TOKEN})
        assert ok.status_code == 200 and ok.json()["service"] == "one"
    assert built == ["the test's service"]
