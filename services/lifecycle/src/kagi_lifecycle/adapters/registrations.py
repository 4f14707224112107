"""Self-registration links in MongoDB (collection ``registrations``), keyed by the token's HMAC."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel

from kagi_lifecycle.adapters.structs import StructRepository
from kagi_lifecycle.domain.registration import Registration
from kagi_shared.mongo import Tx

REGISTRATIONS = "registrations"


class RegistrationRepository(StructRepository[Registration]):
    COLLECTION = REGISTRATIONS
    MODEL = Registration
    INDEXES = (IndexModel([("login_id", ASCENDING)]),
               # Links are worthless a day after they expire; the server drops them.
               IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=86400))

    async def replace(self, tx: Tx, registration: Registration) -> None:
        """Store ``registration`` as the address's only usable link: earlier unused ones count as used."""
        await self._replace_unused(tx, {"login_id": registration.login_id}, registration, registration.created_at)

    async def spend(self, tx: Tx, token_hash: str, account_id: str, at: datetime) -> bool:
        """Mark the link used by ``account_id`` if it is unused and unexpired at ``at``; False otherwise."""
        result = await self.collection.update_one(
            {"_id": token_hash, "used_at": None, "expires_at": {"$gt": at}},
            {"$set": {"used_at": at, "account_id": account_id}}, session=tx.session)
        return result.modified_count == 1
