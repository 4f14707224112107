"""Audit's internal API: recent entries and chain verification, for operators."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Litestar, Request, get
from litestar.params import Parameter, QueryParameter

from kagi_audit.bootstrap import NAME, Audit, bootstrap
from kagi_shared.contracts.audit import AuditEntry, VerdictOut
from kagi_shared.service_api import RunningService, ServiceApi, caller_of, require_role, run_service_api, service_app
from kagi_shared.settings import Settings


def service_api(settings: Settings, audit: Audit | None = None) -> ServiceApi:
    app = RunningService(audit, lambda: bootstrap(settings))

    @get("/internal/audit")
    async def entries(
        request: Request[Any, Any, Any],
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[AuditEntry]:
        require_role(caller_of(request), "operator")
        links = await app().ledger.recent(actor_id, limit)
        return [{"seq": link.seq, "hash": link.hash, **link.entry} for link in links]

    @get("/internal/audit/verify")
    async def verify(request: Request[Any, Any, Any]) -> VerdictOut:
        require_role(caller_of(request), "operator")
        return VerdictOut(**msgspec.structs.asdict(await app().service.verify()))

    return ServiceApi(NAME, [entries, verify], ready=app.ready, lifespan=[app.lifespan])


def create_app(settings: Settings, audit: Audit | None = None) -> Litestar:
    return service_app(settings, service_api(settings, audit))


def main() -> None:
    run_service_api(NAME, create_app)


if __name__ == "__main__":
    main()
