"""Password reset links in MongoDB (collection ``password_resets``), keyed by the token's HMAC."""

from __future__ import annotations

from datetime import datetime

import msgspec
from pymongo import ASCENDING, IndexModel

from kagi_lifecycle.adapters.structs import StructRepository
from kagi_shared.mongo import Tx

RESETS = "password_resets"


class ResetLink(msgspec.Struct, kw_only=True):
    id: str
    """HMAC of the mailed token."""
    account_id: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None
    replaced: bool = False


class ResetLinkRepository(StructRepository[ResetLink]):
    COLLECTION = RESETS
    MODEL = ResetLink
    INDEXES = (IndexModel([("account_id", ASCENDING)]),)

    async def replace(self, tx: Tx, link: ResetLink) -> None:
        """Store ``link`` as the account's only usable one: its unused earlier links count as used (replaced)."""
        await self._replace_unused(tx, {"account_id": link.account_id}, link, link.created_at)

    async def spend(self, tx: Tx, token_hash: str, at: datetime) -> bool:
        """Mark the link used, if it was not; False when another use came first."""
        result = await self.collection.update_one({"_id": token_hash, "used_at": None}, {"$set": {"used_at": at}},
                                                  session=tx.session)
        return result.modified_count == 1
