"""認証情報登録 URLs in MongoDB (collection ``enrolments``), keyed by the URL token's HMAC."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pymongo import ASCENDING, IndexModel, ReturnDocument

from kagi_lifecycle.adapters.structs import StructRepository
from kagi_lifecycle.domain.enrolment import Enrolment
from kagi_shared.mongo import Tx, struct_doc

ENROLMENTS = "enrolments"
VoidReason = Literal["otp_failures", "reissued", "disabled"]


class EnrolmentRepository(StructRepository[Enrolment]):
    COLLECTION = ENROLMENTS
    MODEL = Enrolment
    INDEXES = (IndexModel([("account_id", ASCENDING)]),
               # Kept a month past expiry (the holder still hears "expired", not "invalid"), then dropped.
               IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=30 * 86400))

    async def add(self, tx: Tx, enrolment: Enrolment) -> None:
        await self.collection.insert_one(struct_doc(enrolment), session=tx.session)

    async def void_open(self, tx: Tx, account_id: str, at: datetime, reason: VoidReason) -> None:
        """Every unused, unvoided URL of the account stops working."""
        await self.collection.update_many({"account_id": account_id, "used_at": None, "voided_at": None},
                                          {"$set": {"voided_at": at, "void_reason": reason}}, session=tx.session)

    async def count_otp_failure(self, enrolment_id: str) -> int | None:
        """One more wrong one-time password on an open URL; the count after it (None: spent or voided)."""
        doc = await self.collection.find_one_and_update(
            {"_id": enrolment_id, "used_at": None, "voided_at": None}, {"$inc": {"otp_failures": 1}},
            return_document=ReturnDocument.AFTER)
        return int(doc["otp_failures"]) if doc else None

    async def void(self, enrolment_id: str, at: datetime, reason: VoidReason) -> None:
        await self.collection.update_one({"_id": enrolment_id, "voided_at": None},
                                         {"$set": {"voided_at": at, "void_reason": reason}})

    async def spend(self, tx: Tx, enrolment_id: str, at: datetime) -> bool:
        """Mark the URL used if it is open and unexpired at ``at``; False otherwise."""
        result = await self.collection.update_one(
            {"_id": enrolment_id, "used_at": None, "voided_at": None, "expires_at": {"$gt": at}},
            {"$set": {"used_at": at}}, session=tx.session)
        return result.modified_count == 1
