"""Usage locations, viewer keys and viewer rights in MongoDB (database ``kagi_invite``)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel

from kagi_invite.adapters.documents import (
    Collection,
    Collections,
    delete_pair,
    find_pair,
    find_pairs,
    insert_pair,
    pair_id,
    stored_version,
    upsert_versioned,
)
from kagi_invite.domain.locations import AlreadyViewer, Location, ViewerKey, ViewerRight
from kagi_shared.mongo import Tx, doc_struct

LOCATIONS = "locations"
VIEWER_KEYS = "viewer_keys"
VIEWER_RIGHTS = "viewer_rights"


class LocationRepository(Collections):
    locations = Collection(LOCATIONS, IndexModel([("owner_id", ASCENDING), ("name", ASCENDING)]))
    keys = Collection(VIEWER_KEYS, IndexModel([("key_hash", ASCENDING)], unique=True))
    rights = Collection(VIEWER_RIGHTS, IndexModel([("location_id", ASCENDING), ("added_at", ASCENDING)]),
                        IndexModel([("account_id", ASCENDING)]))

    # -- locations -------------------------------------------------------------------------------
    async def version(self, location_id: str, tx: Tx) -> int | None:
        return await stored_version(self.locations, tx, location_id)

    async def owner(self, location_id: str, tx: Tx) -> str | None:
        doc = await self.locations.find_one({"_id": location_id}, {"owner_id": 1}, session=tx.session)
        return str(doc["owner_id"]) if doc else None

    async def upsert(self, tx: Tx, location: Location) -> None:
        await upsert_versioned(self.locations, tx, location, location.id)

    async def get(self, location_id: str) -> Location | None:
        doc = await self.locations.find_one({"_id": location_id})
        return doc_struct(doc, Location) if doc else None

    async def search(self, owner_id: str, query: str, skip: int, limit: int) -> tuple[list[Location], int]:
        """By name or address (substring), supply-point number or customer number (prefix)."""
        filters: dict[str, Any] = {"owner_id": owner_id}
        if query:
            text = re.escape(query)
            digits = re.escape(re.sub(r"[\s\-]+", "", query))
            filters["$or"] = [{"name": {"$regex": text}}, {"address": {"$regex": text}},
                              {"_id": {"$regex": f"^{digits}"}}, {"customer_number": {"$regex": f"^{digits}"}}]
        total = await self.locations.count_documents(filters)
        docs = await self.locations.find(filters).sort([("name", ASCENDING), ("_id", ASCENDING)]) \
            .skip(skip).limit(limit).to_list()
        return [doc_struct(d, Location) for d in docs], total

    async def many(self, location_ids: list[str]) -> list[Location]:
        docs = await self.locations.find({"_id": {"$in": location_ids}}).sort("name", ASCENDING).to_list()
        return [doc_struct(d, Location) for d in docs]

    # -- viewer keys -----------------------------------------------------------------------------
    async def add_key(self, tx: Tx, key: ViewerKey) -> None:
        doc = msgspec.structs.asdict(key)
        doc["_id"] = doc.pop("id")
        await self.keys.insert_one(doc, session=tx.session)

    async def key_by_hash(self, key_hash: str) -> ViewerKey | None:
        doc = await self.keys.find_one({"key_hash": key_hash})
        return doc_struct(doc, ViewerKey) if doc else None

    async def redeem_key(self, tx: Tx, key_id: str, account_id: str, now: datetime) -> bool:
        result = await self.keys.update_one(
            {"_id": key_id, "status": "pending", "expires_at": {"$gt": now}},
            {"$set": {"status": "redeemed", "redeemed_by": account_id, "redeemed_at": now}}, session=tx.session)
        return result.modified_count == 1

    async def revoke_pending_keys(self, tx: Tx, location_id: str) -> int:
        result = await self.keys.update_many({"location_id": location_id, "status": "pending"},
                                             {"$set": {"status": "revoked"}}, session=tx.session)
        return int(result.modified_count)

    async def keys_of(self, location_id: str) -> list[ViewerKey]:
        docs = await self.keys.find({"location_id": location_id}).sort("issued_at", DESCENDING).to_list()
        return [doc_struct(d, ViewerKey) for d in docs]

    # -- viewer rights ---------------------------------------------------------------------------
    async def add_right(self, tx: Tx, right: ViewerRight) -> None:
        doc = msgspec.structs.asdict(right)
        doc["_id"] = pair_id(right.location_id, right.account_id)
        await insert_pair(self.rights, tx, doc, AlreadyViewer)

    async def right(self, location_id: str, account_id: str) -> ViewerRight | None:
        return await find_pair(self.rights, ViewerRight, location_id, account_id)

    async def rights_of_location(self, location_id: str) -> list[ViewerRight]:
        return await find_pairs(self.rights, ViewerRight, {"location_id": location_id}, "added_at")

    async def rights_of_viewer(self, account_id: str) -> list[ViewerRight]:
        return await find_pairs(self.rights, ViewerRight, {"account_id": account_id}, "added_at")

    async def remove_right(self, tx: Tx, location_id: str, account_id: str) -> bool:
        return await delete_pair(self.rights, tx, location_id, account_id)

    async def remove_rights_of_location(self, tx: Tx, location_id: str) -> list[ViewerRight]:
        rights = await find_pairs(self.rights, ViewerRight, {"location_id": location_id}, tx=tx)
        await self.rights.delete_many({"location_id": location_id}, session=tx.session)
        return rights

    async def remove_account(self, tx: Tx, account_id: str) -> int:
        """A purged account loses every viewer right it had, and its locations' viewers theirs."""
        mine = await self.rights.delete_many({"account_id": account_id}, session=tx.session)
        theirs = await self.rights.delete_many({"owner_id": account_id}, session=tx.session)
        return int(mine.deleted_count + theirs.deleted_count)
