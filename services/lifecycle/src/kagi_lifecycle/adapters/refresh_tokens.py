"""Refresh tokens in MongoDB (collection ``refresh_tokens``), keyed by the token's HMAC; a family is one login."""

from __future__ import annotations

from datetime import datetime

import msgspec
from pymongo import ASCENDING, IndexModel, ReturnDocument

from kagi_lifecycle.adapters.structs import StructRepository
from kagi_shared.mongo import doc_struct, struct_doc

REFRESH_TOKENS = "refresh_tokens"


class RefreshToken(msgspec.Struct, kw_only=True):
    id: str
    """HMAC of the token handed out."""
    account_id: str
    family: str
    expires_at: datetime
    started_at: datetime | None = None
    """The family's login; tokens stored before the absolute lifetime existed have none."""
    session_version: int
    used: bool = False
    used_at: datetime | None = None


class RefreshTokenRepository(StructRepository[RefreshToken]):
    COLLECTION = REFRESH_TOKENS
    MODEL = RefreshToken
    INDEXES = (IndexModel([("family", ASCENDING)]),
               IndexModel([("account_id", ASCENDING)]))

    async def add(self, token: RefreshToken) -> None:
        await self.collection.insert_one(struct_doc(token))

    async def use(self, token_hash: str, at: datetime) -> RefreshToken | None:
        """Mark the token used and return it as it was, if it was unused; None otherwise (one use wins)."""
        doc = await self.collection.find_one_and_update({"_id": token_hash, "used": False},
                                                        {"$set": {"used": True, "used_at": at}},
                                                        return_document=ReturnDocument.BEFORE)
        return doc_struct(doc, RefreshToken) if doc else None

    async def end_family(self, family: str) -> None:
        """Every token of the family stops working."""
        await self.collection.delete_many({"family": family})
