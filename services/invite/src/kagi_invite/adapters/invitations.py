"""Invitation keys, confirmation links, co-users, households and rate-limit hits in MongoDB."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from kagi_invite.adapters.documents import (
    Collection,
    Collections,
    delete_pair,
    find_pair,
    find_pairs,
    insert_pair,
    pair_id,
    reserve,
    session,
)
from kagi_invite.domain.invitations import AlreadyMember, ConfirmationLink, CoUser, InvitationKey
from kagi_shared.mongo import Tx, doc_struct, struct_doc

KEYS = "invitation_keys"
LINKS = "confirmation_links"
CO_USERS = "co_users"
HOUSEHOLDS = "households"
RATE_HITS = "rate_hits"
HITS_TTL_S = 86400


class InvitationRepository(Collections):
    keys = Collection(KEYS, IndexModel([("key_hash", ASCENDING)], unique=True),
                      IndexModel([("owner_id", ASCENDING), ("issued_at", DESCENDING)]),
                      IndexModel([("reservation_id", ASCENDING)]))
    links = Collection(LINKS, IndexModel([("token_hash", ASCENDING)], unique=True),
                       IndexModel([("reservation_id", ASCENDING)]))
    co_users = Collection(CO_USERS, IndexModel([("owner_id", ASCENDING), ("added_at", ASCENDING)]),
                          IndexModel([("account_id", ASCENDING)]))
    households = Collection(HOUSEHOLDS)
    # Hits older than any sane rate window are dropped by the server (a day is far above the setting).
    hits = Collection(RATE_HITS, IndexModel([("bucket", ASCENDING), ("at", ASCENDING)]),
                      IndexModel([("at", ASCENDING)], expireAfterSeconds=HITS_TTL_S))

    # -- keys ----------------------------------------------------------------------------------
    async def add_key(self, tx: Tx, key: InvitationKey, owner_login_id: str, owner_email: str) -> None:
        doc = struct_doc(key)
        doc.update(owner_login_id=owner_login_id, owner_email=owner_email)
        await self.keys.insert_one(doc, session=tx.session)

    async def key_by_hash(self, key_hash: str) -> InvitationKey | None:
        doc = await self.keys.find_one({"key_hash": key_hash})
        return doc_struct(doc, InvitationKey) if doc else None

    async def key_of_owner(self, owner_id: str, key_id: str, tx: Tx | None = None) -> InvitationKey | None:
        doc = await self.keys.find_one({"_id": key_id, "owner_id": owner_id}, session=session(tx))
        return doc_struct(doc, InvitationKey) if doc else None

    async def keys_of_owner(self, owner_id: str, limit: int = 100) -> list[InvitationKey]:
        docs = await self.keys.find({"owner_id": owner_id}).sort("issued_at", DESCENDING).limit(limit).to_list()
        return [doc_struct(d, InvitationKey) for d in docs]

    async def owner_contact(self, key_id: str, tx: Tx | None = None) -> tuple[str, str]:
        doc = await self.keys.find_one({"_id": key_id}, {"owner_login_id": 1, "owner_email": 1},
                                       session=session(tx))
        return (doc or {}).get("owner_login_id", ""), (doc or {}).get("owner_email", "")

    async def reserve_key(self, tx: Tx, key_id: str, reservation_id: str, until: datetime,
                          now: datetime) -> bool:
        """Hold a pending key (or one whose earlier reservation ran out); atomic, so one reserver wins."""
        return await reserve(self.keys, tx, key_id, "pending", reservation_id, until, now)

    async def key_by_reservation(self, reservation_id: str, tx: Tx | None = None) -> InvitationKey | None:
        doc = await self.keys.find_one({"reservation_id": reservation_id, "status": "reserved"},
                                       session=session(tx))
        return doc_struct(doc, InvitationKey) if doc else None

    async def release_key(self, tx: Tx, reservation_id: str, count_attempt: bool) -> InvitationKey | None:
        """Give a held key back (pending again), counting a failed login on it if ``count_attempt``; the key
        after that, or None when nothing held it under ``reservation_id``."""
        update: dict[str, Any] = {"$set": {"status": "pending", "reservation_id": None, "reserved_until": None}}
        if count_attempt:
            update["$inc"] = {"attempts": 1}
        doc = await self.keys.find_one_and_update({"reservation_id": reservation_id, "status": "reserved"}, update,
                                                  return_document=ReturnDocument.AFTER, session=tx.session)
        return doc_struct(doc, InvitationKey) if doc else None

    async def redeem_key(self, tx: Tx, reservation_id: str, account_id: str, login_id: str, now: datetime) -> bool:
        result = await self.keys.update_one(
            {"reservation_id": reservation_id, "status": "reserved"},
            {"$set": {"status": "redeemed", "redeemed_by": account_id, "redeemed_login_id": login_id,
                      "redeemed_at": now, "reserved_until": None}},
            session=tx.session)
        return result.modified_count == 1

    async def set_key_status(self, tx: Tx, key_id: str, status: str, expected: tuple[str, ...]) -> bool:
        result = await self.keys.update_one({"_id": key_id, "status": {"$in": list(expected)}},
                                            {"$set": {"status": status}}, session=tx.session)
        return result.modified_count == 1

    # -- confirmation links ----------------------------------------------------------------------
    async def add_link(self, tx: Tx, link: ConfirmationLink) -> None:
        await self.links.insert_one(struct_doc(link), session=tx.session)

    async def link_by_hash(self, token_hash: str) -> ConfirmationLink | None:
        doc = await self.links.find_one({"token_hash": token_hash})
        return doc_struct(doc, ConfirmationLink) if doc else None

    async def claim_key_guess(self, link_id: str, max_wrong: int) -> int | None:
        """Count a key guess through the link as wrong before it is judged (atomically, only while the link has
        guesses left), so concurrent guesses cannot outnumber ``max_wrong``; None when it has none left."""
        doc = await self.links.find_one_and_update(
            {"_id": link_id, "status": {"$ne": "voided"}, "wrong_keys": {"$lt": max_wrong}},
            {"$inc": {"wrong_keys": 1}}, return_document=ReturnDocument.AFTER)
        return int(doc["wrong_keys"]) if doc else None

    async def give_back_key_guess(self, link_id: str) -> None:
        """The guess was a key that exists: not a wrong key after all."""
        await self.links.update_one({"_id": link_id, "wrong_keys": {"$gt": 0}}, {"$inc": {"wrong_keys": -1}})

    async def set_link_status(self, tx: Tx, link_id: str, status: str) -> None:
        await self.links.update_one({"_id": link_id}, {"$set": {"status": status}}, session=tx.session)

    async def reserve_link(self, tx: Tx, link_id: str, reservation_id: str, until: datetime, now: datetime) -> bool:
        return await reserve(self.links, tx, link_id, "active", reservation_id, until, now)

    async def link_by_reservation(self, reservation_id: str, tx: Tx | None = None) -> ConfirmationLink | None:
        doc = await self.links.find_one({"reservation_id": reservation_id}, session=session(tx))
        return doc_struct(doc, ConfirmationLink) if doc else None

    async def finish_link(self, tx: Tx, reservation_id: str, status: str) -> None:
        await self.links.update_one({"reservation_id": reservation_id, "status": "reserved"},
                                    {"$set": {"status": status, "reserved_until": None}}, session=tx.session)

    # -- co-users and households -----------------------------------------------------------------
    async def add_co_user(self, tx: Tx, co_user: CoUser) -> None:
        doc = msgspec.structs.asdict(co_user)
        doc["_id"] = pair_id(co_user.owner_id, co_user.account_id)
        await insert_pair(self.co_users, tx, doc, AlreadyMember)

    async def co_user(self, owner_id: str, account_id: str, tx: Tx | None = None) -> CoUser | None:
        return await find_pair(self.co_users, CoUser, owner_id, account_id, tx)

    async def co_users_of(self, owner_id: str) -> list[CoUser]:
        return await find_pairs(self.co_users, CoUser, {"owner_id": owner_id}, "added_at")

    async def memberships(self, account_id: str) -> list[CoUser]:
        return await find_pairs(self.co_users, CoUser, {"account_id": account_id}, "added_at")

    async def remove_co_user(self, tx: Tx, owner_id: str, account_id: str) -> bool:
        return await delete_pair(self.co_users, tx, owner_id, account_id)

    async def remove_account(self, tx: Tx, account_id: str) -> int:
        """A purged account stops being anyone's co-user, and its own co-users lose it."""
        mine = await self.co_users.delete_many({"account_id": account_id}, session=tx.session)
        theirs = await self.co_users.delete_many({"owner_id": account_id}, session=tx.session)
        await self.households.delete_one({"_id": account_id}, session=tx.session)
        return int(mine.deleted_count + theirs.deleted_count)

    async def representative(self, owner_id: str, tx: Tx | None = None) -> str:
        doc = await self.households.find_one({"_id": owner_id}, session=session(tx))
        return str(doc["representative_account_id"]) if doc else owner_id

    async def set_representative(self, tx: Tx, owner_id: str, account_id: str) -> None:
        await self.households.update_one({"_id": owner_id}, {"$set": {"representative_account_id": account_id}},
                                         upsert=True, session=tx.session)

    # -- sliding-window rate limits --------------------------------------------------------------
    async def hit(self, bucket: str, now: datetime, window_start: datetime) -> int:
        """Record a hit and return the hits in the window, this one included (refused hits count too)."""
        await self.hits.insert_one({"bucket": bucket, "at": now})
        return await self.hits.count_documents({"bucket": bucket, "at": {"$gt": window_start}})

    async def forgive(self, bucket: str) -> None:
        """Take back this bucket's newest hit: an attempt that succeeded is not a failure."""
        doc = await self.hits.find_one({"bucket": bucket}, sort=[("at", DESCENDING)])
        if doc is not None:
            await self.hits.delete_one({"_id": doc["_id"]})

    async def nth_hit(self, bucket: str, window_start: datetime, n: int) -> datetime | None:
        """The time of the ``n``-th oldest hit (from 0) still in the window."""
        docs = await self.hits.find({"bucket": bucket, "at": {"$gt": window_start}}).sort("at", ASCENDING) \
            .skip(n).limit(1).to_list()
        return docs[0]["at"] if docs else None
