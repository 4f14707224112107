"""Companies, admins, requests and current grants in MongoDB (database ``kagi_permissions``)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Generic, TypeVar

import msgspec
from pymongo import ASCENDING, DESCENDING, DeleteOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from kagi_permissions.domain.companies import Company, IdTaken, UserBusy
from kagi_permissions.domain.requests import OPEN, PermissionRequest, RevokeDraft
from kagi_permissions.domain.review import Campaign
from kagi_shared.mongo import Doc, Store, Tx, doc_struct

COMPANIES = "companies"
ADMINS = "admins"
REQUESTS = "requests"
GRANTS = "grants"
USER_IDS = "user_ids"
STRAY_ACKS = "stray_acks"
ACCOUNTS = "accounts"
DRAFTS = "revoke_drafts"
REVIEWS = "reviews"
USER_LOCKS = "user_locks"

S = TypeVar("S", bound=msgspec.Struct)


def to_doc(obj: msgspec.Struct) -> dict[str, Any]:
    doc: dict[str, Any] = msgspec.to_builtins(obj, builtin_types=(datetime,))
    doc["_id"] = doc.pop("id")
    return doc


def from_doc(doc: dict[str, Any], cls: type[S]) -> S:
    return doc_struct(doc, cls)


def _s(tx: Tx | None) -> Any:
    return tx.session if tx else None


class _Structs(Generic[S]):
    """A collection of one struct type stored by ``to_doc`` (``_id`` = ``id``)."""

    def __init__(self, collection: AsyncCollection[Doc], model: type[S]) -> None:
        self.collection = collection
        self.model = model

    async def insert(self, tx: Tx, value: S) -> None:
        await self.collection.insert_one(to_doc(value), session=tx.session)

    async def save(self, tx: Tx, value: S, *, upsert: bool = False) -> None:
        doc = to_doc(value)
        await self.collection.replace_one({"_id": doc["_id"]}, doc, upsert=upsert, session=tx.session)

    async def get(self, id_: str, tx: Tx | None = None) -> S | None:
        doc = await self.collection.find_one({"_id": id_}, session=_s(tx))
        return from_doc(doc, self.model) if doc else None


class Repository:
    def __init__(self, store: Store) -> None:
        self.db = store.db
        self.companies = store.db[COMPANIES]
        self.admins = store.db[ADMINS]
        self.requests = store.db[REQUESTS]
        self.grants = store.db[GRANTS]
        self.user_ids = store.db[USER_IDS]
        self.stray_acks = store.db[STRAY_ACKS]
        self._companies = _Structs(self.companies, Company)
        self._requests = _Structs(self.requests, PermissionRequest)
        self._drafts = _Structs(store.db[DRAFTS], RevokeDraft)
        self._campaigns = _Structs(store.db[REVIEWS], Campaign)

    async def counts_by_state(self) -> tuple[list[tuple[tuple[str, str], int]], list[tuple[tuple[str, str], int]]]:
        """Requests per (kind, status) and target-system deliveries per (system, state): two aggregations,
        for the state gauges."""
        by_status = await self.requests.aggregate(
            [{"$group": {"_id": {"kind": "$kind", "status": "$status"}, "n": {"$sum": 1}}}])
        requests = [((str(r["_id"].get("kind")), str(r["_id"].get("status"))), int(r["n"])) async for r in by_status]
        by_system = await self.requests.aggregate(
            [{"$unwind": "$systems"},
             {"$group": {"_id": {"system": "$systems.system", "state": "$systems.state"}, "n": {"$sum": 1}}}])
        systems = [((str(r["_id"].get("system")), str(r["_id"].get("state"))), int(r["n"])) async for r in by_system]
        return requests, systems

    async def ensure_indexes(self) -> None:
        await self.requests.create_index([("company_id", ASCENDING), ("submitted_at", DESCENDING)])
        await self.requests.create_index([("status", ASCENDING), ("batch_date", ASCENDING)])
        # The batch picks due requests in filing order: equality on status, sort on submitted_at from the index
        # (the batch date is a filter on the few entries read), so a chunk never sorts every accepted request.
        await self.requests.create_index([("status", ASCENDING), ("submitted_at", ASCENDING)])
        await self.requests.create_index([("user_key", ASCENDING), ("status", ASCENDING)])
        await self.grants.create_index([("company_id", ASCENDING)])

    # -- companies and admins ------------------------------------------------------------------
    async def insert_company(self, tx: Tx, company: Company) -> None:
        await self._companies.insert(tx, company)

    async def save_company(self, tx: Tx, company: Company) -> None:
        await self._companies.save(tx, company)

    async def company(self, company_id: str, tx: Tx | None = None) -> Company | None:
        return await self._companies.get(company_id, tx)

    async def list_companies(self) -> list[Company]:
        return [from_doc(d, Company) async for d in self.companies.find().sort("registered_at", ASCENDING)]

    async def ip_allowlist(self) -> list[str]:
        cursor = self.companies.find({"status": "active", "ip_allowlist.0": {"$exists": True}}, {"ip_allowlist": 1})
        return sorted({ip async for doc in cursor for ip in doc["ip_allowlist"]})

    async def set_admins(self, tx: Tx, company_id: str, emails: list[str]) -> None:
        """The company's admins are exactly ``emails``; ``IdTaken`` when one is another company's admin."""
        await self.admins.delete_many({"company_id": company_id}, session=tx.session)
        if emails:
            try:
                await self.admins.insert_many([{"_id": e.lower(), "company_id": company_id} for e in emails],
                                              session=tx.session)
            except DuplicateKeyError:
                raise IdTaken(company_id) from None

    async def admin_company(self, login: str) -> str | None:
        doc = await self.admins.find_one({"_id": login.lower()})
        return str(doc["company_id"]) if doc else None

    # -- requests -----------------------------------------------------------------------------
    async def insert_request(self, tx: Tx, request: PermissionRequest) -> None:
        await self._requests.insert(tx, request)

    async def save_request(self, tx: Tx, request: PermissionRequest) -> None:
        await self._requests.save(tx, request)

    async def request(self, request_id: str, tx: Tx | None = None) -> PermissionRequest | None:
        return await self._requests.get(request_id, tx)

    async def find_requests(self, query: dict[str, Any], limit: int = 200) -> list[PermissionRequest]:
        cursor = self.requests.find(query).sort("submitted_at", DESCENDING).limit(limit)
        return [from_doc(d, PermissionRequest) async for d in cursor]

    async def search_requests(self, *, company_id: str | None = None, status: str | None = None,
                              user_key: str | None = None, limit: int = 200) -> list[PermissionRequest]:
        """Newest first, filtered by whichever of company, status and user are given."""
        query = {field: value for field, value in
                 (("company_id", company_id), ("status", status), ("user_key", user_key)) if value}
        return await self.find_requests(query, limit)

    async def open_with_delivery(self, state: str, sent_before: datetime | None = None,
                                 limit: int = 500) -> list[PermissionRequest]:
        """Open requests with a delivery in ``state`` (and, with ``sent_before``, sent before it)."""
        match: dict[str, Any] = {"state": state}
        if sent_before is not None:
            match["sent_at"] = {"$lt": sent_before}
        return await self.find_requests({"status": {"$in": list(OPEN)}, "systems": {"$elemMatch": match}}, limit)

    async def cancel_open_requests(self, tx: Tx, company_id: str, reason: str) -> list[PermissionRequest]:
        """Cancel the company's submitted and accepted requests; the ones cancelled, as they were."""
        cursor = self.requests.find({"company_id": company_id, "status": {"$in": ["submitted", "accepted"]}},
                                    session=tx.session)
        found = [from_doc(d, PermissionRequest) async for d in cursor]
        for request in found:
            await self.requests.update_one({"_id": request.id}, {"$set": {
                "status": "cancelled", "cancel_reason": reason}}, session=tx.session)
        return found

    async def due_for_batch(self, batch: date) -> list[str]:
        """Ids of every due request in filing order: the batch re-reads each chunk inside its transaction anyway.

        One unsorted read, ordered here: the embedded database sorts without an index (it reads and sorts every
        accepted request), so a sorted read per chunk made a batch run quadratic in its size."""
        cursor = self.requests.find({"status": "accepted", "batch_date": {"$lte": batch.isoformat()}},
                                    {"submitted_at": 1})
        due = [(d["submitted_at"], str(d["_id"])) async for d in cursor]
        return [request_id for _, request_id in sorted(due)]

    async def requests_by_id(self, tx: Tx, ids: list[str], status: str | None = None) -> list[PermissionRequest]:
        """Read many requests in one query (by ``_id``) inside ``tx``, keeping only those in ``status`` if given."""
        query: dict[str, Any] = {"_id": {"$in": ids}}
        if status is not None:
            query["status"] = status
        # All in the first reply: the default first batch (101) sent a getMore for every chunk of 200, and on the
        # embedded database a command costs about what a small write does. One more than can match, since a
        # batch filled exactly keeps the cursor open for a getMore that finds nothing.
        cursor = self.requests.find(query, session=tx.session, batch_size=len(ids) + 1)
        return [from_doc(d, PermissionRequest) async for d in cursor]

    async def changes(self, tx: Tx, user_keys: set[str] | None = None) -> Changes:
        """A write set for many requests at once, with the current grants of ``user_keys`` read in one query."""
        grants: dict[str, dict[str, Any]] = {}
        if user_keys:
            cursor = self.grants.find({"_id": {"$in": sorted(user_keys)}}, {"permissions": 1}, session=tx.session,
                                      batch_size=len(user_keys) + 1)  # in one reply, as ``requests_by_id``
            grants = {d["_id"]: d async for d in cursor}
        return Changes(self, grants)

    async def open_request_for(self, key: str, tx: Tx | None = None) -> PermissionRequest | None:
        doc = await self.requests.find_one({"user_key": key, "status": {"$in": list(OPEN)}}, session=_s(tx))
        return from_doc(doc, PermissionRequest) if doc else None

    async def pending_juju_additions(self, company_id: str) -> set[str]:
        cursor = self.requests.find({"company_id": company_id, "status": {"$in": list(OPEN)},
                                     "systems": {"$elemMatch": {"system": "JUJU", "after": {"$ne": None},
                                                                "state": {"$ne": "applied"}}}},
                                    {"user_key": 1})
        return {d["user_key"] async for d in cursor}

    async def sent_before(self, moment: datetime) -> list[PermissionRequest]:
        cursor = self.requests.find({"status": {"$in": list(OPEN)}, "systems": {"$elemMatch": {
            "state": "sent", "reminded": False, "sent_at": {"$lt": moment}}}})
        return [from_doc(d, PermissionRequest) async for d in cursor]

    # -- user ids and grants ------------------------------------------------------------------
    async def id_taken(self, key: str) -> bool:
        return await self.user_ids.find_one({"_id": key}) is not None

    async def id_holder(self, key: str, tx: Tx | None = None) -> str | None:
        """The company the user ID is issued or reserved for (None: free; "" for a record without one)."""
        doc = await self.user_ids.find_one({"_id": key}, session=_s(tx))
        return str(doc.get("company_id") or "") if doc is not None else None

    async def reserve_id(self, tx: Tx, key: str, company_id: str, request_id: str) -> None:
        """Unique on the lower-cased ID: two concurrent new requests for one ID cannot both pass (``IdTaken``)."""
        try:
            await self.user_ids.insert_one({"_id": key, "company_id": company_id, "request_id": request_id},
                                           session=tx.session)
        except DuplicateKeyError:
            raise IdTaken(key) from None

    async def lock_user(self, tx: Tx, key: str, request_id: str) -> None:
        """One open change/revoke per user (unique on the user): concurrent filings cannot both pass (``UserBusy``)."""
        try:
            await self.db[USER_LOCKS].insert_one({"_id": key, "request_id": request_id}, session=tx.session)
        except DuplicateKeyError:
            raise UserBusy(key) from None

    async def unlock_user(self, tx: Tx, key: str, request_id: str) -> None:
        await self.db[USER_LOCKS].delete_one({"_id": key, "request_id": request_id}, session=tx.session)

    async def release_id(self, tx: Tx, key: str) -> None:
        await self.user_ids.delete_one({"_id": key}, session=tx.session)

    async def grant(self, key: str, tx: Tx | None = None) -> dict[str, Any] | None:
        return await self.grants.find_one({"_id": key}, session=_s(tx))

    async def company_grants(self, company_id: str, tx: Tx | None = None) -> list[dict[str, Any]]:
        return await self.grants.find({"company_id": company_id}, session=_s(tx)).sort("_id").to_list()

    async def juju_holders(self, company_id: str) -> set[str]:
        cursor = self.grants.find({"company_id": company_id, "permissions.JUJU": {"$ne": None}}, {"_id": 1})
        return {d["_id"] async for d in cursor}

    async def remember_account(self, tx: Tx, account_id: str, login_id: str) -> None:
        await self.db[ACCOUNTS].update_one({"_id": account_id}, {"$set": {"login_key": login_id.lower()}},
                                           upsert=True, session=tx.session)

    async def record_login(self, tx: Tx, account_id: str, at: datetime) -> None:
        """Last login per ID (for the access review), from lifecycle's events; out-of-order safe ($max)."""
        account = await self.db[ACCOUNTS].find_one({"_id": account_id}, session=tx.session)
        if account is None:
            return
        await self.db[ACCOUNTS].update_one({"_id": account_id}, {"$max": {"last_login_at": at}}, session=tx.session)
        await self.grants.update_one({"_id": account["login_key"]}, {"$max": {"last_login_at": at}},
                                     session=tx.session)

    async def save_draft(self, tx: Tx, draft: RevokeDraft) -> None:
        await self._drafts.save(tx, draft, upsert=True)

    async def draft(self, draft_id: str) -> RevokeDraft | None:
        return await self._drafts.get(draft_id)

    async def drafts(self, company_id: str) -> list[RevokeDraft]:
        """The company's open drafts, oldest first."""
        docs = await self.db[DRAFTS].find({"company_id": company_id, "status": "open"}).sort("created_at").to_list()
        return [from_doc(d, RevokeDraft) for d in docs]

    async def close_draft(self, tx: Tx | None, draft_id: str, request_id: str) -> None:
        await self.db[DRAFTS].update_one({"_id": draft_id}, {"$set": {"status": "filed", "request_id": request_id}},
                                         session=_s(tx))

    # -- access reviews -------------------------------------------------------------------------
    async def save_campaign(self, tx: Tx, campaign: Campaign) -> None:
        await self._campaigns.save(tx, campaign, upsert=True)

    async def campaign(self, campaign_id: str, tx: Tx | None = None) -> Campaign | None:
        return await self._campaigns.get(campaign_id, tx)

    async def campaigns(self, company_id: str) -> list[Campaign]:
        cursor = self.db[REVIEWS].find({"company_id": company_id}).sort("started_at", DESCENDING)
        return [from_doc(d, Campaign) async for d in cursor]


class Changes:
    """Writes of a transaction gathered in memory and sent as a few bulk commands by ``flush``.

    On the embedded database every command costs about as much as a transaction's commit, so a batch of
    acks or of grant commands is a handful of commands instead of several per request. Grant writes keep
    their order (an ordered bulk): a user dropped and granted again within one batch ends up granted.
    """

    def __init__(self, repo: Repository, grants: dict[str, dict[str, Any]]) -> None:
        self.repo = repo
        self.grants = grants
        self.saved: dict[str, PermissionRequest] = {}
        self.grant_ops: list[UpdateOne | DeleteOne] = []
        self._open_update: dict[str, dict[str, Any]] = {}
        self.released: list[str] = []
        self.unlocked: list[tuple[str, str]] = []
        self.stray: list[dict[str, Any]] = []

    def save(self, request: PermissionRequest) -> None:
        self.saved[request.id] = request

    def set_permission(self, request: PermissionRequest, system: str, value: str | None) -> bool:
        """Record the user's permission on one system; returns True if the user holds nothing any more."""
        key = request.user_key
        permissions = self.grants.setdefault(key, {"_id": key}).setdefault("permissions", {})
        permissions[system] = value
        fields = {f"permissions.{system}": value, "user_id": request.user_id, "company_id": request.company_id,
                  "name_kanji": request.name_kanji, "name_kana": request.name_kana, "contractor": request.contractor}
        pending = self._open_update.get(key)
        if pending is not None:  # the queued UpdateOne holds this dict: the user's next system joins its $set
            pending.update(fields)
        else:
            self._open_update[key] = fields
            self.grant_ops.append(UpdateOne({"_id": key}, {"$set": fields}, upsert=True))
        return not any(permissions.values())

    def permissions_of(self, key: str) -> dict[str, str]:
        """What the user holds now on every system, with the writes of this set applied."""
        held = self.grants.get(key, {}).get("permissions", {})
        return {system: value for system, value in held.items() if value}

    def drop_user(self, key: str) -> None:
        self.grants.pop(key, None)
        self._open_update.pop(key, None)
        self.grant_ops.append(DeleteOne({"_id": key}))
        self.released.append(key)

    def unlock_user(self, key: str, request_id: str) -> None:
        self.unlocked.append((key, request_id))

    def stray_ack(self, event_id: str, data: dict[str, Any], why: str) -> None:
        self.stray.append({"_id": event_id, "why": why, **data})

    async def flush(self, tx: Tx) -> None:
        repo, session = self.repo, tx.session
        if self.grant_ops:
            await repo.grants.bulk_write(self.grant_ops, ordered=True, session=session)
        if self.released:
            await repo.user_ids.delete_many({"_id": {"$in": self.released}}, session=session)
        if self.unlocked:
            await repo.db[USER_LOCKS].bulk_write(
                [DeleteOne({"_id": key, "request_id": rid}) for key, rid in self.unlocked], session=session)
        if self.stray:
            await repo.stray_acks.insert_many(self.stray, session=session)
        if self.saved:
            await repo.requests.bulk_write(
                [ReplaceOne({"_id": r.id}, to_doc(r)) for r in self.saved.values()], ordered=False, session=session)
