"""Operators read the audit ledger and verify its hash chain."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter

from kagi_gateway.deps import current_caller, request_id
from kagi_gateway.services import Services

OPERATOR = ("operator",)


class AuditController(Controller):
    path = "/api/v1/operator/audit"
    tags = ("audit",)

    @get("/", opt={"roles": OPERATOR}, summary="Recent audit entries, newest first")
    async def entries(
        self, services: NamedDependency[Services], request: Request[Any, Any, Any],
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        params = {"limit": str(limit)} | ({"actorId": actor_id} if actor_id else {})
        reply = await services.call("audit", "GET", "/internal/audit", caller=current_caller(request),
                                    params=params, request_id=request_id(request))
        return list(reply)

    @get("/verify", opt={"roles": OPERATOR}, summary="Recompute the hash chain; names the first broken entry")
    async def verify(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> dict[str, Any]:
        reply = await services.call("audit", "GET", "/internal/audit/verify", caller=current_caller(request),
                                    request_id=request_id(request))
        return dict(reply)
