"""Unlock requests in MongoDB (collection ``unlock_requests``)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, DESCENDING, IndexModel

from kagi_lifecycle.adapters.structs import StructRepository
from kagi_lifecycle.domain.unlock import RequestStatus, UnlockRequest
from kagi_shared.mongo import Tx, doc_struct, struct_doc

UNLOCK_REQUESTS = "unlock_requests"


class UnlockRequestRepository(StructRepository[UnlockRequest]):
    COLLECTION = UNLOCK_REQUESTS
    MODEL = UnlockRequest
    INDEXES = (IndexModel([("status", ASCENDING), ("filed_at", DESCENDING)]),
               IndexModel([("account_id", ASCENDING), ("status", ASCENDING)]))

    async def add(self, tx: Tx, request: UnlockRequest) -> None:
        await self.collection.insert_one(struct_doc(request), session=tx.session)

    async def has_pending(self, account_id: str) -> bool:
        return await self.collection.find_one({"account_id": account_id, "status": "pending"}) is not None

    async def listing(self, status: str | None = None, limit: int = 100) -> list[UnlockRequest]:
        """Newest first; all statuses when ``status`` is None."""
        cursor = self.collection.find({"status": status} if status else {}, sort=[("filed_at", DESCENDING)],
                                      limit=limit)
        return [doc_struct(doc, UnlockRequest) async for doc in cursor]

    async def decide(self, tx: Tx, request_id: str, status: RequestStatus, by: str, note: str | None,
                     at: datetime) -> bool:
        """Record the decision if the request is still pending; False when another decision came first."""
        result = await self.collection.update_one(
            {"_id": request_id, "status": "pending"},
            {"$set": {"status": status, "decided_at": at, "decided_by": by, "note": note}}, session=tx.session)
        return result.modified_count == 1
