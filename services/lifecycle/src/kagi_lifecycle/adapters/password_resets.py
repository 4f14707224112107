"""Password reset links in MongoDB (collection ``password_resets``), keyed by the token's HMAC."""

from __future__ import annotations

from datetime import datetime

import msgspec
from pymongo import ASCENDING, IndexModel

from kagi_shared.mongo import CollectionRepository, Tx, doc_struct, struct_doc

RESETS = "password_resets"


class ResetLink(msgspec.Struct, kw_only=True):
    id: str
    """HMAC of the mailed token."""
    account_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    replaced: bool = False


class ResetLinkRepository(CollectionRepository):
    COLLECTION = RESETS
    INDEXES = (IndexModel([("account_id", ASCENDING)]),)

    async def replace(self, tx: Tx, link: ResetLink) -> None:
        """Store ``link`` as the account's only usable one: its unused earlier links count as used (replaced)."""
        await self.collection.update_many({"account_id": link.account_id, "used_at": None},
                                          {"$set": {"used_at": link.created_at, "replaced": True}},
                                          session=tx.session)
        await self.collection.insert_one(struct_doc(link), session=tx.session)

    async def get(self, token_hash: str) -> ResetLink | None:
        doc = await self.collection.find_one({"_id": token_hash})
        return doc_struct(doc, ResetLink) if doc else None

    async def spend(self, tx: Tx, token_hash: str, at: datetime) -> bool:
        """Mark the link used, if it was not; False when another use came first."""
        result = await self.collection.update_one({"_id": token_hash, "used_at": None}, {"$set": {"used_at": at}},
                                                  session=tx.session)
        return result.modified_count == 1
