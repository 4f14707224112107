"""The base of lifecycle's one-collection repositories whose documents are one struct each (``_id`` = ``id``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

import msgspec

from kagi_shared.mongo import CollectionRepository, Tx, doc_struct, struct_doc

S = TypeVar("S", bound=msgspec.Struct)


class StructRepository(CollectionRepository, Generic[S]):
    MODEL: type[S]
    """The struct a document holds (set by the subclass)."""

    async def get(self, id_: str) -> S | None:
        doc = await self.collection.find_one({"_id": id_})
        return doc_struct(doc, self.MODEL) if doc else None

    async def _replace_unused(self, tx: Tx, holder: dict[str, Any], link: S, at: datetime) -> None:
        """Store ``link`` as the holder's only usable link: its unused earlier links count as used at ``at``
        (``replaced``)."""
        await self.collection.update_many({**holder, "used_at": None}, {"$set": {"used_at": at, "replaced": True}},
                                          session=tx.session)
        await self.collection.insert_one(struct_doc(link), session=tx.session)
