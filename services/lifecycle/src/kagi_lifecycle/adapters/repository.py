"""Accounts in MongoDB (database ``kagi_lifecycle``).

Use cases say which account must still be as they read it with ``when`` (plain field equality); the conditions
that need an operator (last login only moves forward, a TOTP step is used once) are named methods here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.errors import DuplicateKeyError

from kagi_lifecycle.domain.accounts import Account, AccountExists
from kagi_shared.mongo import Store, Tx, doc_struct, struct_doc

ACCOUNTS = "accounts"
MIGRATIONS = "migrations"
LADDER_BACKFILL = "ladder_schedule_v1"


def _to_doc(account: Account) -> dict[str, Any]:
    return struct_doc(account)


def _from_doc(doc: dict[str, Any]) -> Account:
    return doc_struct(doc, Account)


def _session(tx: Tx | None) -> Any:
    return tx.session if tx else None


def last_login_before(moment: datetime) -> dict[str, Any]:
    """Filter: the stored last login (the ladder's base) is earlier than ``moment``, or there is none.

    Every write of last login carries it, so a clock stepping back, or a late report, never moves
    last login, and with it the inactivity period, backwards; checked in the write itself so that
    concurrent logins cannot undo each other either."""
    return {"$or": [{"last_login_at": None}, {"last_login_at": {"$lt": moment}}]}


class AccountRepository:
    def __init__(self, store: Store) -> None:
        self.collection = store.db[ACCOUNTS]
        self.migrations = store.db[MIGRATIONS]

    async def ensure_indexes(self) -> None:
        await self.collection.create_index([("login_id", ASCENDING)], unique=True)
        # The sweep asks only for due accounts: next_stage_at <= the sweep's moment.
        await self.collection.create_index([("next_stage_at", ASCENDING)])

    async def add(self, tx: Tx, account: Account) -> None:
        """Store a new account; ``AccountExists`` when its login ID is taken (case-insensitively)."""
        try:
            await self.collection.insert_one(_to_doc(account), session=tx.session)
        except DuplicateKeyError:
            raise AccountExists(account.login_id) from None

    async def by_login_id(self, login_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"login_id": login_id}, session=_session(tx))
        return _from_doc(doc) if doc else None

    async def get(self, account_id: str, tx: Tx | None = None) -> Account | None:
        doc = await self.collection.find_one({"_id": account_id}, session=_session(tx))
        return _from_doc(doc) if doc else None

    async def update(self, tx: Tx, account_id: str, changes: dict[str, Any], *,
                     when: dict[str, Any] | None = None, bump_session: bool = False) -> bool:
        """Set ``changes`` if the account still has the field values in ``when``; True when it did."""
        return await self._update(tx, {"_id": account_id, **(when or {})}, changes, bump_session)

    async def _update(self, tx: Tx, query: dict[str, Any], changes: dict[str, Any], bump_session: bool) -> bool:
        update: dict[str, Any] = {"$set": changes}
        if bump_session:
            update["$inc"] = {"session_version": 1}
        result = await self.collection.update_one(query, update, session=tx.session)
        return result.matched_count == 1

    async def end_sessions(self, tx: Tx, account_id: str) -> None:
        """Every token of the account stops working (the session version moves on)."""
        await self._update(tx, {"_id": account_id}, {}, True)

    async def move_last_login(self, tx: Tx, account_id: str, at: datetime, changes: dict[str, Any], *,
                              active_only: bool) -> Account | None:
        """Set ``changes`` (last login ``at`` and its period) only if the stored last login is earlier, and the
        account is active (``active_only``) or at least not purged; the account as written when it moved (the
        login answers with it: no second read), None when it did not."""
        status: Any = "active" if active_only else {"$ne": "purged"}
        doc = await self.collection.find_one_and_update(
            {"_id": account_id, "status": status, **last_login_before(at)}, {"$set": changes},
            return_document=ReturnDocument.AFTER, session=tx.session)
        return _from_doc(doc) if doc else None

    async def take_totp_step(self, tx: Tx, account_id: str, step: int) -> bool:
        """Record ``step`` as the last TOTP step used, if it is later than the last one and the account active:
        a code is accepted once, also by two concurrent logins."""
        return await self._update(tx, {"_id": account_id, "status": "active", "totp_last_step": {"$lt": step}},
                                  {"totp_last_step": step}, False)

    async def replace_hash(self, account_id: str, verified: str, fresh: str) -> bool:
        """Swap the password hash only if it is still the one just verified (no transaction needed: one document)."""
        result = await self.collection.update_one({"_id": account_id, "password_hash": verified},
                                                  {"$set": {"password_hash": fresh}})
        return result.modified_count == 1

    async def increment_failures(self, tx: Tx, account_id: str) -> int:
        """One more consecutive wrong password; the count after it (0: no such account)."""
        doc = await self.collection.find_one_and_update(
            {"_id": account_id}, {"$inc": {"failed_logins": 1}},
            return_document=ReturnDocument.AFTER, session=tx.session,
        )
        return int(doc["failed_logins"]) if doc else 0

    async def increment_secret_failures(self, tx: Tx, account_id: str) -> int | None:
        """One more consecutive wrong secret answer of an active account; the count after it (None: not active)."""
        doc = await self.collection.find_one_and_update(
            {"_id": account_id, "status": "active"}, {"$inc": {"secret_failures": 1}},
            return_document=ReturnDocument.AFTER, session=tx.session)
        return int(doc["secret_failures"]) if doc else None

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

    async def schedule_unscheduled(self, plan: Callable[[datetime | None, datetime], tuple[str, datetime]]) -> int:
        """Give accounts stored before the ladder existed (no ``next_stage_at`` field) their first stage,
        ``plan(last_login_at, issued_at) -> (stage, due_at)``. Runs once per database; the count it scheduled."""
        if await self.migrations.find_one({"_id": LADDER_BACKFILL}):
            return 0
        count = 0
        cursor = self.collection.find({"next_stage_at": {"$exists": False}, "status": {"$ne": "purged"}})
        async for doc in cursor:
            stage, due_at = plan(doc.get("last_login_at"), doc["issued_at"])
            await self.collection.update_one(
                {"_id": doc["_id"], "next_stage_at": {"$exists": False}},
                {"$set": {"ladder_stage": None, "next_stage": stage, "next_stage_at": due_at}})
            count += 1
        await self.migrations.update_one({"_id": LADDER_BACKFILL}, {"$set": {"accounts": count}}, upsert=True)
        return count
