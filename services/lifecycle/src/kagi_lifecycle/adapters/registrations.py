"""Self-registration links in MongoDB (collection ``registrations``), keyed by the token's HMAC."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from kagi_lifecycle.domain.registration import Registration
from kagi_shared.mongo import CollectionRepository, Tx, doc_struct, struct_doc

REGISTRATIONS = "registrations"


class RegistrationRepository(CollectionRepository):
    COLLECTION = REGISTRATIONS
    INDEXES = (IndexModel([("login_id", ASCENDING)]),
               # Links are worthless a day after they expire; the server drops them.
               IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=86400))

    async def replace(self, tx: Tx, registration: Registration) -> None:
        """Store ``registration`` as the address's only usable link: earlier unused ones count as used."""
        await self.collection.update_many({"login_id": registration.login_id, "used_at": None},
                                          {"$set": {"used_at": registration.created_at, "replaced": True}},
                                          session=tx.session)
        await self.collection.insert_one(struct_doc(registration), session=tx.session)

    async def get(self, token_hash: str) -> Registration | None:
        doc = await self.collection.find_one({"_id": token_hash})
        return doc_struct(doc, Registration) if doc else None

    async def spend(self, tx: Tx, token_hash: str, account_id: str, at: datetime) -> bool:
        """Mark the link used by ``account_id`` if it is unused and unexpired at ``at``; False otherwise."""
        result = await self.collection.update_one(
            {"_id": token_hash, "used_at": None, "expires_at": {"$gt": at}},
            {"$set": {"used_at": at, "account_id": account_id}}, session=tx.session)
        return result.modified_count == 1
