"""Audit's internal API: recent entries and chain verification, for operators."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, get
from litestar.params import Parameter, QueryParameter

from kagi_audit.bootstrap import NAME, Audit, bootstrap
from kagi_shared.contracts.audit import AuditEntry, VerdictOut
from kagi_shared.service_api import RunningService, ServiceApi, api_entrypoints, caller_as
from kagi_shared.settings import Settings


def service_api(settings: Settings, audit: Audit | None = None) -> ServiceApi:
    app = RunningService(audit, lambda: bootstrap(settings))

    @get("/internal/audit")
    async def entries(
        request: Request[Any, Any, Any],
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[AuditEntry]:
        caller_as(request, "operator")
        links = await app().ledger.recent(actor_id, limit)
        return [{"seq": link.seq, "hash": link.hash, **link.entry} for link in links]

    @get("/internal/audit/verify")
    async def verify(request: Request[Any, Any, Any]) -> VerdictOut:
        caller_as(request, "operator")
        return VerdictOut(**msgspec.structs.asdict(await app().service.verify()))

    return app.api(NAME, [entries, verify])


create_app, main = api_entrypoints(NAME, service_api)


if __name__ == "__main__":
    main()
