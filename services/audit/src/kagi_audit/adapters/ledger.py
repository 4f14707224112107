"""The append-only ledger in MongoDB (database ``kagi_audit``).

Nothing here updates or deletes; in production the service's database user is granted
``insert``/``find`` only on this collection, so even the service cannot rewrite history.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel

from kagi_audit.domain.chain import Link
from kagi_shared.mongo import CollectionRepository, Tx

LEDGER = "ledger"


class Ledger(CollectionRepository):
    COLLECTION = LEDGER
    INDEXES = (IndexModel([("entry.actorId", ASCENDING), ("_id", DESCENDING)]),)

    async def last(self, tx: Tx | None = None) -> Link | None:
        doc = await self.collection.find_one({}, sort=[("_id", DESCENDING)], session=tx.session if tx else None)
        return _link(doc) if doc else None

    async def append(self, tx: Tx, link: Link) -> None:
        # _id is the sequence number: two writers racing for the same slot cannot both succeed.
        await self.collection.insert_one({"_id": link.seq, "prev_hash": link.prev_hash, "hash": link.hash,
                                          "entry": link.entry}, session=tx.session)

    async def all(self, batch: int = 1000) -> AsyncIterator[Link]:
        async for doc in self.collection.find({}).sort([("_id", ASCENDING)]).batch_size(batch):
            yield _link(doc)

    async def recent(self, actor_id: str | None = None, limit: int = 100) -> list[Link]:
        query: dict[str, Any] = {"entry.actorId": actor_id} if actor_id else {}
        docs = await self.collection.find(query).sort([("_id", DESCENDING)]).limit(limit).to_list()
        return [_link(d) for d in docs]


def _link(doc: dict[str, Any]) -> Link:
    return msgspec.convert({"seq": doc["_id"], "prev_hash": doc["prev_hash"], "hash": doc["hash"],
                            "entry": doc["entry"]}, Link)
