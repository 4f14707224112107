"""Delivery records in MongoDB (database ``kagi_notify``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING

from kagi_notify.domain.deliveries import Delivery
from kagi_shared.mongo import Store, Tx

DELIVERIES = "deliveries"


class DeliveryRepository:
    def __init__(self, store: Store) -> None:
        self.collection = store.db[DELIVERIES]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("status", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self.collection.create_index([("recipient", ASCENDING), ("created_at", DESCENDING)])

    async def add(self, tx: Tx, delivery: Delivery) -> None:
        doc = msgspec.structs.asdict(delivery)
        doc["_id"] = doc.pop("id")
        await self.collection.insert_one(doc, session=tx.session)

    async def due(self, now: datetime, limit: int = 100) -> list[Delivery]:
        docs = await self.collection.find({"status": {"$in": ["queued", "failed"]}, "next_attempt_at": {"$lte": now}}) \
            .sort([("next_attempt_at", ASCENDING)]).limit(limit).to_list()
        return [_delivery(d) for d in docs]

    async def update(self, tx: Tx | None, delivery_id: str, changes: dict[str, Any],
                     unset: tuple[str, ...] = ()) -> None:
        update: dict[str, Any] = {"$set": changes}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        await self.collection.update_one({"_id": delivery_id}, update, session=tx.session if tx else None)

    async def for_recipient(self, recipient: str, limit: int = 100) -> list[Delivery]:
        docs = await self.collection.find({"recipient": recipient}).sort([("created_at", DESCENDING)]) \
            .limit(limit).to_list()
        return [_delivery(d) for d in docs]

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self.collection.find_one({"_id": delivery_id})
        return _delivery(doc) if doc else None


def _delivery(doc: dict[str, Any]) -> Delivery:
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    return msgspec.convert(doc, Delivery)
