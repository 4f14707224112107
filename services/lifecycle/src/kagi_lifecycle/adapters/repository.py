"""Accounts in MongoDB (database ``kagi_lifecycle``)."""

from __future__ import annotations

from typing import Any

import msgspec
from pymongo import ASCENDING, ReturnDocument

from kagi_lifecycle.domain.accounts import Account
from kagi_shared.mongo import Store, Tx

ACCOUNTS = "accounts"


def _to_doc(account: Account) -> dict[str, Any]:
    doc = msgspec.structs.asdict(account)
    doc["_id"] = doc.pop("id")
    return doc


def _from_doc(doc: dict[str, Any]) -> Account:
    doc = dict(doc)
    doc["id"] = doc.pop("_id")
    return msgspec.convert(doc, Account)


class AccountRepository:
    def __init__(self, store: Store) -> None:
        self.collection = store.db[ACCOUNTS]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("login_id", ASCENDING)], unique=True)

    async def add(self, tx: Tx, account: Account) -> None:
        await self.collection.insert_one(_to_doc(account), session=tx.session)

    async def by_login_id(self, login_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"login_id": login_id}, session=tx.session if tx else None)
        return _from_doc(doc) if doc else None

    async def get(self, account_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"_id": account_id}, session=tx.session if tx else None)
        return _from_doc(doc) if doc else None

    async def update(self, tx: Tx, account_id: str, changes: dict[str, Any]) -> None:
        await self.collection.update_one({"_id": account_id}, {"$set": changes}, session=tx.session)

    async def increment_failures(self, tx: Tx, account_id: str) -> int:
        doc = await self.collection.find_one_and_update(
            {"_id": account_id}, {"$inc": {"failed_logins": 1}},
            return_document=ReturnDocument.AFTER, session=tx.session,
        )
        return int(doc["failed_logins"]) if doc else 0
