"""Accounts in MongoDB (database ``kagi_lifecycle``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument

from kagi_lifecycle.domain.accounts import Account
from kagi_shared.mongo import Store, Tx, doc_struct, struct_doc

ACCOUNTS = "accounts"


def _to_doc(account: Account) -> dict[str, Any]:
    return struct_doc(account)


def _from_doc(doc: dict[str, Any]) -> Account:
    return doc_struct(doc, Account)


class AccountRepository:
    def __init__(self, store: Store) -> None:
        self.collection = store.db[ACCOUNTS]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("login_id", ASCENDING)], unique=True)
        # The sweep asks only for due accounts: next_stage_at <= the sweep's moment.
        await self.collection.create_index([("next_stage_at", ASCENDING)])

    async def add(self, tx: Tx, account: Account) -> None:
        await self.collection.insert_one(_to_doc(account), session=tx.session)

    async def by_login_id(self, login_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"login_id": login_id}, session=tx.session if tx else None)
        return _from_doc(doc) if doc else None

    async def get(self, account_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"_id": account_id}, session=tx.session if tx else None)
        return _from_doc(doc) if doc else None

    async def update(self, tx: Tx, account_id: str, changes: dict[str, Any], *,
                     when: dict[str, Any] | None = None, bump_session: bool = False) -> bool:
        """Set ``changes`` if the account still matches ``when``; True when it did."""
        update: dict[str, Any] = {"$set": changes}
        if bump_session:
            update["$inc"] = {"session_version": 1}
        result = await self.collection.update_one({"_id": account_id, **(when or {})}, update,
                                                  session=tx.session)
        return result.matched_count == 1

    async def replace_hash(self, account_id: str, verified: str, fresh: str) -> bool:
        """Swap the password hash only if it is still the one just verified (no transaction needed: one document)."""
        result = await self.collection.update_one({"_id": account_id, "password_hash": verified},
                                                  {"$set": {"password_hash": fresh}})
        return result.modified_count == 1

    async def counts_by_state(self) -> list[tuple[tuple[str, str], int]]:
        """((status, last ladder stage or "none"), accounts) — one aggregation, for the state gauges."""
        cursor = await self.collection.aggregate(
            [{"$group": {"_id": {"status": "$status", "stage": "$ladder_stage"}, "n": {"$sum": 1}}}])
        return [((str(row["_id"].get("status") or "active"), str(row["_id"].get("stage") or "none")), int(row["n"]))
                async for row in cursor]

    async def due_ids(self, as_of: datetime, limit: int = 0) -> list[str]:
        """Accounts whose next ladder stage is due at ``as_of`` (the indexed query; never a full scan)."""
        cursor = self.collection.find({"next_stage_at": {"$lte": as_of}}, {"_id": 1},
                                      sort=[("next_stage_at", ASCENDING)], limit=limit)
        return [doc["_id"] async for doc in cursor]

    async def due(self, as_of: datetime, limit: int = 0) -> list[Account]:
        cursor = self.collection.find({"next_stage_at": {"$lte": as_of}},
                                      sort=[("next_stage_at", ASCENDING)], limit=limit)
        return [_from_doc(doc) async for doc in cursor]

    async def session_state(self, account_id: str) -> tuple[int, str, list[str]] | None:
        doc = await self.collection.find_one({"_id": account_id}, {"session_version": 1, "status": 1, "roles": 1})
        if doc is None:
            return None
        return int(doc.get("session_version", 0)), str(doc.get("status", "active")), list(doc.get("roles", []))

    async def increment_failures(self, tx: Tx, account_id: str) -> int:
        doc = await self.collection.find_one_and_update(
            {"_id": account_id}, {"$inc": {"failed_logins": 1}},
            return_document=ReturnDocument.AFTER, session=tx.session,
        )
        return int(doc["failed_logins"]) if doc else 0
