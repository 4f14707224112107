"""Document helpers of invite's repositories.

Co-users, viewer rights and contract claims are each stored once per pair of ids under ``"{first}:{second}"``
(owner and co-user, location and viewer, account and contract), so a second insert of the same pair fails on
the key; the ``_id`` is not a field of their structs.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypeVar, overload

import msgspec
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from kagi_shared.mongo import Doc, Store, Tx

S = TypeVar("S", bound=msgspec.Struct)


class Collection:
    """A collection a repository uses, declared once with its indexes (``CollectionRepository`` declares one
    collection this way); read on a repository it is that collection of the repository's store."""

    def __init__(self, name: str, *indexes: IndexModel) -> None:
        self.name = name
        self.indexes = indexes

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.attribute = attribute

    @overload
    def __get__(self, repository: None, owner: type) -> Collection: ...

    @overload
    def __get__(self, repository: Collections, owner: type) -> AsyncCollection[Doc]: ...

    def __get__(self, repository: Collections | None, owner: type) -> Collection | AsyncCollection[Doc]:
        if repository is None:
            return self
        collection = repository.db[self.name]
        setattr(repository, self.attribute, collection)  # the instance's own attribute from now on
        return collection


class Collections:
    """A repository over the ``Collection`` attributes of its class; the service creates their indexes at start."""

    def __init__(self, store: Store) -> None:
        self.db = store.db

    async def ensure_indexes(self) -> None:
        for declared in vars(type(self)).values():
            if isinstance(declared, Collection):
                for index in declared.indexes:  # one command per index, as ``create_index`` sends
                    await self.db[declared.name].create_indexes([index])


def session(tx: Tx | None) -> Any:
    return tx.session if tx else None


def pair_id(first: str, second: str) -> str:
    return f"{first}:{second}"


def pair_struct(doc: Doc, model: type[S]) -> S:
    fields = dict(doc)
    fields.pop("_id")
    return msgspec.convert(fields, model)


async def insert_pair(collection: AsyncCollection[Doc], tx: Tx, doc: Doc, exists: type[Exception]) -> None:
    """Insert ``doc`` (its ``_id`` a ``pair_id``); ``exists`` when the pair is there already."""
    try:
        await collection.insert_one(doc, session=tx.session)
    except DuplicateKeyError:
        raise exists(doc["_id"]) from None


async def find_pair(collection: AsyncCollection[Doc], model: type[S], first: str, second: str,
                    tx: Tx | None = None) -> S | None:
    doc = await collection.find_one({"_id": pair_id(first, second)}, session=session(tx))
    return pair_struct(doc, model) if doc else None


async def find_pairs(collection: AsyncCollection[Doc], model: type[S], query: Doc, oldest_first_by: str | None = None,
                     tx: Tx | None = None) -> list[S]:
    cursor = collection.find(query, session=session(tx))
    if oldest_first_by:
        cursor = cursor.sort(oldest_first_by, ASCENDING)
    return [pair_struct(d, model) for d in await cursor.to_list()]


async def delete_pair(collection: AsyncCollection[Doc], tx: Tx, first: str, second: str) -> bool:
    result = await collection.delete_one({"_id": pair_id(first, second)}, session=tx.session)
    return result.deleted_count == 1


async def reserve(collection: AsyncCollection[Doc], tx: Tx, id_: str, free_status: str, reservation_id: str,
                  until: datetime, now: datetime) -> bool:
    """Hold an unexpired item that is ``free_status`` (or whose earlier reservation ran out); atomic, so one
    reserver wins."""
    free = {"$or": [{"status": free_status}, {"status": "reserved", "reserved_until": {"$lte": now}}]}
    result = await collection.update_one(
        {"_id": id_, "expires_at": {"$gt": now}, **free},
        {"$set": {"status": "reserved", "reservation_id": reservation_id, "reserved_until": until}},
        session=tx.session)
    return result.modified_count == 1


async def upsert_versioned(collection: AsyncCollection[Doc], tx: Tx, value: msgspec.Struct, id_: str) -> None:
    """Store contract data received from outside under its own id (the caller has compared versions)."""
    doc = msgspec.to_builtins(value, builtin_types=(datetime,))
    doc.pop("id")
    await collection.update_one({"_id": id_}, {"$set": doc}, upsert=True, session=tx.session)


async def stored_version(collection: AsyncCollection[Doc], tx: Tx, id_: str) -> int | None:
    doc = await collection.find_one({"_id": id_}, {"version": 1}, session=tx.session)
    return int(doc["version"]) if doc else None
