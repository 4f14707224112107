"""Operators read the audit ledger and verify its hash chain."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
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
        return await services.audit.entries(current_caller(request), limit=limit, actor_id=actor_id,
                                            rid=request_id(request))

    @get("/verify", opt={"roles": OPERATOR}, summary="Recompute the hash chain; names the first broken entry")
    async def verify(self, services: NamedDependency[Services], request: Request[Any, Any, Any]) -> dict[str, Any]:
        verdict = await services.audit.verify(current_caller(request), rid=request_id(request))
        return msgspec.to_builtins(verdict)  # type: ignore[no-any-return]
