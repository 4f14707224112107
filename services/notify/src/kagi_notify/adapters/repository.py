"""Notify's MongoDB collections (database ``kagi_notify``): deliveries, preferences, admin contacts, site updates."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.errors import DuplicateKeyError

from kagi_notify.domain.admin_contacts import AdminContact, ContactExists
from kagi_notify.domain.deliveries import Delivery
from kagi_notify.domain.preferences import Preferences
from kagi_shared.mongo import CollectionRepository, InsertWatch, Tx, doc_struct, struct_doc

DELIVERIES = "deliveries"
PREFERENCES = "preferences"
ADMIN_CONTACTS = "admin_contacts"
SITE_UPDATES = "info_site_updates"


class DeliveryRepository(CollectionRepository):
    COLLECTION = DELIVERIES
    INDEXES = (IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
               IndexModel([("recipient", ASCENDING), ("created_at", DESCENDING)]),
               IndexModel([("recipient_key", ASCENDING), ("created_at", DESCENDING)]))

    def insert_watch(self, wake: asyncio.Event, await_s: float) -> InsertWatch:
        """Sets ``wake`` on every new delivery (the collection's change stream), for the dispatcher's idle wait."""
        return InsertWatch(self.collection, wake, await_s)

    async def add(self, tx: Tx, delivery: Delivery) -> None:
        doc = msgspec.structs.asdict(delivery)
        doc["_id"] = doc.pop("id")
        doc["recipient_key"] = recipient_key(delivery.recipient)
        await self.collection.insert_one(doc, session=tx.session)

    async def due(self, now: datetime, limit: int = 100, skip_channels: Sequence[str] = ()) -> list[Delivery]:
        query: dict[str, Any] = {"status": {"$in": ["queued", "failed"]}, "next_attempt_at": {"$lte": now}}
        if skip_channels:
            query["channel"] = {"$nin": list(skip_channels)}
        docs = await self.collection.find(query).sort([("next_attempt_at", ASCENDING), ("created_at", ASCENDING)]) \
            .limit(limit).to_list()
        return [_delivery(d) for d in docs]

    async def next_attempt_at(self, skip_channels: Sequence[str] = ()) -> datetime | None:
        """When the earliest delivery still to send is due (``None``: nothing waits)."""
        query: dict[str, Any] = {"status": {"$in": ["queued", "failed"]}}
        if skip_channels:
            query["channel"] = {"$nin": list(skip_channels)}
        doc = await self.collection.find_one(query, {"next_attempt_at": 1}, sort=[("next_attempt_at", ASCENDING)])
        return doc["next_attempt_at"] if doc else None

    async def hold(self, ids: list[str], until: datetime, error: str | None) -> None:
        """Due again at ``until``, attempts and status as they were; the claim is left to lapse with it."""
        changes: dict[str, Any] = {"next_attempt_at": until}
        if error:
            changes["last_error"] = error
        await self.collection.update_many({"_id": {"$in": ids}, "status": {"$in": ["queued", "failed"]}},
                                          {"$set": changes})

    async def claim(self, ids: list[str], now: datetime, until: datetime) -> list[Delivery]:
        """Claim due deliveries in two round trips: a concurrent dispatcher gets the others, never the same one."""
        token = uuid.uuid4().hex
        await self.collection.update_many(
            {"_id": {"$in": ids}, "status": {"$in": ["queued", "failed"]}, "next_attempt_at": {"$lte": now}},
            {"$set": {"next_attempt_at": until, "claim": token}})
        found = {d["_id"]: d for d in await self.collection.find({"_id": {"$in": ids}, "claim": token}).to_list()}
        return [_delivery(found[i]) for i in ids if i in found]  # in the order asked for (per-recipient lanes)

    async def update_many(self, tx: Tx, changes: dict[str, dict[str, Any]]) -> None:
        """Per-delivery changes in one round trip (``changes``: delivery id → fields to set)."""
        if changes:
            await self.collection.bulk_write([UpdateOne({"_id": i, "status": {"$ne": "sent"}}, {"$set": c})
                                              for i, c in changes.items()], ordered=False, session=tx.session)

    async def update(self, tx: Tx | None, delivery_id: str, changes: dict[str, Any],
                     unset: tuple[str, ...] = ()) -> None:
        update: dict[str, Any] = {"$set": changes}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        await self.collection.update_one({"_id": delivery_id}, update, session=tx.session if tx else None)

    async def for_recipient(self, recipient: str, limit: int = 100) -> list[Delivery]:
        """Whatever the case of the address, as operators type it; rows from before ``recipient_key`` existed
        are found by their exact address."""
        query = {"$or": [{"recipient_key": recipient_key(recipient)}, {"recipient": recipient}]}
        docs = await self.collection.find(query).sort([("created_at", DESCENDING)]).limit(limit).to_list()
        return [_delivery(d) for d in docs]

    async def get(self, delivery_id: str) -> Delivery | None:
        doc = await self.collection.find_one({"_id": delivery_id})
        return _delivery(doc) if doc else None


def recipient_key(recipient: str) -> str:
    """Mail addresses are matched case-insensitively (RFC 5321 lets the local part differ, no mailer does)."""
    return recipient.strip().lower()


def _delivery(doc: dict[str, Any]) -> Delivery:
    return doc_struct(doc, Delivery)


def _session(tx: Tx | None) -> Any:
    return tx.session if tx else None


class PreferenceRepository(CollectionRepository):
    """One document per account (``_id`` = account id); the email is kept to match requests without an id."""

    COLLECTION = PREFERENCES
    INDEXES = (IndexModel([("email", ASCENDING)]),)

    async def get(self, account_id: str, tx: Tx | None = None) -> Preferences | None:
        doc = await self.collection.find_one({"_id": account_id}, session=_session(tx))
        return _preferences(doc) if doc else None

    async def for_recipient(self, tx: Tx | None, account_id: str | None, email: str) -> Preferences | None:
        query: dict[str, Any] = {"_id": account_id} if account_id else {"email": email.strip().lower()}
        doc = await self.collection.find_one(query, session=_session(tx))
        return _preferences(doc) if doc else None

    async def put(self, tx: Tx | None, prefs: Preferences) -> None:
        doc = msgspec.structs.asdict(prefs)
        doc.pop("account_id")
        if doc.get("email"):
            doc["email"] = doc["email"].strip().lower()
        else:
            doc.pop("email")
        await self.collection.update_one({"_id": prefs.account_id}, {"$set": doc}, upsert=True,
                                         session=_session(tx))

    async def remember_email(self, tx: Tx, account_id: str, email: str) -> None:
        """From lifecycle's account_created: the address, without touching a choice already made."""
        await self.collection.update_one(
            {"_id": account_id},
            {"$set": {"email": email.strip().lower()}, "$setOnInsert": {"general": True}},
            upsert=True, session=tx.session)


    async def forget(self, tx: Tx, account_id: str) -> None:
        await self.collection.delete_one({"_id": account_id}, session=tx.session)


def _preferences(doc: dict[str, Any]) -> Preferences:
    doc = dict(doc)
    doc["account_id"] = doc.pop("_id")
    return msgspec.convert(doc, Preferences)


class AdminContactRepository(CollectionRepository):
    COLLECTION = ADMIN_CONTACTS
    INDEXES = (IndexModel([("email", ASCENDING)], unique=True),
               IndexModel([("token_hash", ASCENDING)], sparse=True),
               IndexModel([("status", ASCENDING)]))

    async def add(self, tx: Tx, contact: AdminContact) -> None:
        """Store a new contact; ``ContactExists`` when its address is registered already."""
        doc = struct_doc(contact)
        try:
            await self.collection.insert_one(doc, session=tx.session)
        except DuplicateKeyError:
            raise ContactExists(contact.email) from None

    async def record_site_update(self, tx: Tx, update_id: str, title: str, url: str, no_notice: bool,
                                 posted_at: datetime, posted_by: str, notified: int) -> None:
        """An info-sharing-site article and how many contacts its notice went to."""
        await self.collection.database[SITE_UPDATES].insert_one(
            {"_id": update_id, "title": title, "url": url, "no_notice": no_notice, "posted_at": posted_at,
             "posted_by": posted_by, "notified": notified}, session=tx.session)

    async def get(self, contact_id: str, tx: Tx | None = None) -> AdminContact | None:
        doc = await self.collection.find_one({"_id": contact_id}, session=_session(tx))
        return _contact(doc) if doc else None

    async def by_token_hash(self, token_hash: str) -> AdminContact | None:
        doc = await self.collection.find_one({"token_hash": token_hash})
        return _contact(doc) if doc else None

    async def all(self) -> list[AdminContact]:
        return [_contact(d) for d in await self.collection.find().sort([("created_at", ASCENDING)]).to_list()]

    async def active(self, tx: Tx | None = None) -> list[AdminContact]:
        docs = await self.collection.find({"status": "active"}, session=_session(tx)) \
            .sort([("created_at", ASCENDING)]).to_list()
        return [_contact(d) for d in docs]

    async def update(self, tx: Tx, contact_id: str, expect: dict[str, Any], changes: dict[str, Any],
                     unset: tuple[str, ...] = ()) -> bool:
        """Change the contact only if it still matches ``expect``: a concurrent change wins, this one reports it."""
        update: dict[str, Any] = {"$set": changes}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        result = await self.collection.update_one({"_id": contact_id, **expect}, update, session=tx.session)
        return result.modified_count == 1

    async def remove(self, tx: Tx, contact_id: str) -> bool:
        result = await self.collection.delete_one({"_id": contact_id}, session=tx.session)
        return result.deleted_count == 1


def _contact(doc: dict[str, Any]) -> AdminContact:
    return doc_struct(doc, AdminContact)
