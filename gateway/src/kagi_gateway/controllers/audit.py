"""Operators read the audit ledger and verify its hash chain."""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.params import Parameter, QueryParameter

from kagi_gateway.deps import Call

OPERATOR = ("operator",)


class AuditController(Controller):
    path = "/api/v1/operator/audit"
    tags = ("audit",)

    @get("/", opt={"roles": OPERATOR}, summary="Recent audit entries, newest first")
    async def entries(
        self, call: NamedDependency[Call],
        actor_id: Annotated[str | None, QueryParameter(name="actorId", max_length=64)] = None,
        limit: Annotated[int, Parameter(ge=1, le=500)] = 100,
    ) -> list[dict[str, Any]]:
        return await call.audit.entries(call.caller, limit=limit, actor_id=actor_id, rid=call.rid)

    @get("/verify", opt={"roles": OPERATOR}, summary="Recompute the hash chain; names the first broken entry")
    async def verify(self, call: NamedDependency[Call]) -> dict[str, Any]:
        verdict = await call.audit.verify(call.caller, rid=call.rid)
        return msgspec.to_builtins(verdict)  # type: ignore[no-any-return]
