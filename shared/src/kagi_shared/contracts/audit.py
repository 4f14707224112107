"""Audit's internal API: recent ledger entries and the hash chain's verdict (operators)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kagi_shared.contracts import Reply, ServiceClient

if TYPE_CHECKING:
    from kagi_shared.service_api import Caller

AuditEntry = dict[str, Any]
"""``seq`` and ``hash`` of the link, then the recorded event as it was written (its fields vary by event)."""


class VerdictOut(Reply):
    ok: bool
    entries: int
    broken_at: int | None = None
    reason: str | None = None
    checkpoint_entries: int | None = None
    """How many entries the latest signed checkpoint vouches for (None: no checkpoint was available)."""


class AuditClient(ServiceClient):
    service = "audit"

    async def entries(self, caller: Caller, *, limit: int, actor_id: str | None = None,
                      rid: str | None = None) -> list[AuditEntry]:
        params = {"limit": str(limit)} | ({"actorId": actor_id} if actor_id else {})
        return await self._call(list[AuditEntry], "GET", "/internal/audit", caller=caller, params=params, rid=rid)

    async def verify(self, caller: Caller, *, rid: str | None = None) -> VerdictOut:
        return await self._call(VerdictOut, "GET", "/internal/audit/verify", caller=caller, rid=rid)
