"""In-memory adapters for the fast tier: the protocols of ``service/ports.py`` kept in dicts, held to the Mongo
adapters' behaviour by ``tests/contract/``."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import msgspec

from kagi_invite.domain.invitations import AlreadyMember, ConfirmationLink, CoUser, InvitationKey
from kagi_invite.domain.step_up import StepUpCode
from kagi_shared.memory import MemoryTransactions
from kagi_shared.mongo import Doc, Tx, doc_struct, struct_doc


class MemoryStepUps:
    """``StepUpRepository``: codes by id (the latest by issue time), windows by (account, session)."""

    def __init__(self, transactions: MemoryTransactions | None = None) -> None:
        self.codes: dict[str, Doc] = {}
        self.windows: dict[tuple[str, str], datetime] = {}
        if transactions is not None:
            transactions.track(self)

    def snapshot(self) -> object:
        return copy.deepcopy((self.codes, self.windows))

    def restore(self, state: object) -> None:
        self.codes, self.windows = cast(tuple[dict[str, Doc], dict[tuple[str, str], datetime]], state)

    async def replace_active(self, tx: Tx, code: StepUpCode) -> None:
        for doc in self.codes.values():
            if doc["account_id"] == code.account_id and doc["status"] == "active":
                doc["status"] = "replaced"
        self.codes[code.id] = struct_doc(code)

    async def latest(self, account_id: str, tx: Tx | None = None) -> StepUpCode | None:
        mine = [d for d in self.codes.values() if d["account_id"] == account_id]
        if not mine:
            return None
        return doc_struct(copy.deepcopy(max(mine, key=lambda d: d["issued_at"])), StepUpCode)

    async def claim_attempt(self, code_id: str, max_attempts: int) -> StepUpCode | None:
        doc = self.codes.get(code_id)
        if doc is None or doc["status"] != "active" or doc["attempts"] >= max_attempts:
            return None
        doc["attempts"] += 1
        return doc_struct(copy.deepcopy(doc), StepUpCode)

    async def set_status(self, tx: Tx, code_id: str, status: str, expected: str = "active") -> bool:
        doc = self.codes.get(code_id)
        if doc is None or doc["status"] != expected:
            return False
        doc["status"] = status
        return True

    async def open_window(self, tx: Tx, account_id: str, session_id: str, until: datetime) -> None:
        self.windows[(account_id, session_id)] = until

    async def window(self, account_id: str, session_id: str | None) -> datetime | None:
        return self.windows.get((account_id, session_id)) if session_id else None


def _co_user(doc: Doc) -> CoUser:
    return msgspec.convert({k: v for k, v in doc.items() if k != "_id"}, CoUser)


class MemoryInvitations:
    """``InvitationRepository``: keys, links, co-users and households by id, the rate-limit hits in a list."""

    def __init__(self, transactions: MemoryTransactions | None = None) -> None:
        self.keys: dict[str, Doc] = {}
        self.links: dict[str, Doc] = {}
        self.co_users: dict[str, Doc] = {}
        self.households: dict[str, str] = {}
        self.hits: list[tuple[str, datetime]] = []
        if transactions is not None:
            transactions.track(self)

    def snapshot(self) -> object:
        return copy.deepcopy((self.keys, self.links, self.co_users, self.households, self.hits))

    def restore(self, state: object) -> None:
        self.keys, self.links, self.co_users, self.households, self.hits = cast(Any, state)

    # -- keys --------------------------------------------------------------------------------------
    async def add_key(self, tx: Tx, key: InvitationKey, owner_login_id: str, owner_email: str) -> None:
        self.keys[key.id] = {**struct_doc(key), "owner_login_id": owner_login_id, "owner_email": owner_email}

    def _key(self, doc: Doc | None) -> InvitationKey | None:
        if doc is None:
            return None
        return doc_struct({k: v for k, v in copy.deepcopy(doc).items()
                           if k not in ("owner_login_id", "owner_email")}, InvitationKey)

    async def key_by_hash(self, key_hash: str) -> InvitationKey | None:
        return self._key(next((d for d in self.keys.values() if d["key_hash"] == key_hash), None))

    async def key_of_owner(self, owner_id: str, key_id: str, tx: Tx | None = None) -> InvitationKey | None:
        doc = self.keys.get(key_id)
        return self._key(doc if doc is not None and doc["owner_id"] == owner_id else None)

    async def keys_of_owner(self, owner_id: str, limit: int = 100) -> list[InvitationKey]:
        mine = sorted((d for d in self.keys.values() if d["owner_id"] == owner_id), key=lambda d: d["issued_at"],
                      reverse=True)
        return [k for d in mine[:limit] if (k := self._key(d)) is not None]

    async def owner_contact(self, key_id: str, tx: Tx | None = None) -> tuple[str, str]:
        doc = self.keys.get(key_id) or {}
        return doc.get("owner_login_id", ""), doc.get("owner_email", "")

    @staticmethod
    def _hold(doc: Doc | None, free: str, reservation_id: str, until: datetime, now: datetime) -> bool:
        """Hold an unexpired document that is ``free`` or whose earlier hold ran out."""
        if doc is None or doc["expires_at"] <= now:
            return False
        lapsed = doc["status"] == "reserved" and doc["reserved_until"] is not None and doc["reserved_until"] <= now
        if doc["status"] != free and not lapsed:
            return False
        doc.update(status="reserved", reservation_id=reservation_id, reserved_until=until)
        return True

    async def reserve_key(self, tx: Tx, key_id: str, reservation_id: str, until: datetime, now: datetime) -> bool:
        return self._hold(self.keys.get(key_id), "pending", reservation_id, until, now)

    def _reserved_key(self, reservation_id: str) -> Doc | None:
        return next((d for d in self.keys.values()
                     if d["reservation_id"] == reservation_id and d["status"] == "reserved"), None)

    async def key_by_reservation(self, reservation_id: str, tx: Tx | None = None) -> InvitationKey | None:
        return self._key(self._reserved_key(reservation_id))

    async def release_key(self, tx: Tx, reservation_id: str, count_attempt: bool) -> InvitationKey | None:
        doc = self._reserved_key(reservation_id)
        if doc is None:
            return None
        doc.update(status="pending", reservation_id=None, reserved_until=None)
        if count_attempt:
            doc["attempts"] += 1
        return self._key(doc)

    async def redeem_key(self, tx: Tx, reservation_id: str, account_id: str, login_id: str, now: datetime) -> bool:
        doc = self._reserved_key(reservation_id)
        if doc is None:
            return False
        doc.update(status="redeemed", redeemed_by=account_id, redeemed_login_id=login_id, redeemed_at=now,
                   reserved_until=None)
        return True

    async def set_key_status(self, tx: Tx, key_id: str, status: str, expected: tuple[str, ...]) -> bool:
        doc = self.keys.get(key_id)
        if doc is None or doc["status"] not in expected:
            return False
        doc["status"] = status
        return True

    # -- confirmation links ------------------------------------------------------------------------
    async def add_link(self, tx: Tx, link: ConfirmationLink) -> None:
        self.links[link.id] = struct_doc(link)

    def _link(self, doc: Doc | None) -> ConfirmationLink | None:
        return doc_struct(copy.deepcopy(doc), ConfirmationLink) if doc is not None else None

    async def link_by_hash(self, token_hash: str) -> ConfirmationLink | None:
        return self._link(next((d for d in self.links.values() if d["token_hash"] == token_hash), None))

    async def claim_key_guess(self, link_id: str, max_wrong: int) -> int | None:
        doc = self.links.get(link_id)
        if doc is None or doc["status"] == "voided" or doc["wrong_keys"] >= max_wrong:
            return None
        doc["wrong_keys"] += 1
        return int(doc["wrong_keys"])

    async def give_back_key_guess(self, link_id: str) -> None:
        doc = self.links.get(link_id)
        if doc is not None and doc["wrong_keys"] > 0:
            doc["wrong_keys"] -= 1

    async def set_link_status(self, tx: Tx, link_id: str, status: str) -> None:
        if link_id in self.links:
            self.links[link_id]["status"] = status

    async def reserve_link(self, tx: Tx, link_id: str, reservation_id: str, until: datetime, now: datetime) -> bool:
        return self._hold(self.links.get(link_id), "active", reservation_id, until, now)

    async def link_by_reservation(self, reservation_id: str, tx: Tx | None = None) -> ConfirmationLink | None:
        return self._link(next((d for d in self.links.values() if d["reservation_id"] == reservation_id), None))

    async def finish_link(self, tx: Tx, reservation_id: str, status: str) -> None:
        doc = next((d for d in self.links.values()
                    if d["reservation_id"] == reservation_id and d["status"] == "reserved"), None)
        if doc is not None:
            doc.update(status=status, reserved_until=None)

    # -- co-users and households -------------------------------------------------------------------
    async def add_co_user(self, tx: Tx, co_user: CoUser) -> None:
        doc_id = f"{co_user.owner_id}:{co_user.account_id}"
        if doc_id in self.co_users:
            raise AlreadyMember(doc_id)
        self.co_users[doc_id] = {"_id": doc_id, **msgspec.structs.asdict(co_user)}

    async def co_user(self, owner_id: str, account_id: str, tx: Tx | None = None) -> CoUser | None:
        doc = self.co_users.get(f"{owner_id}:{account_id}")
        return _co_user(copy.deepcopy(doc)) if doc else None

    def _co_users(self, field: str, value: str) -> list[CoUser]:
        found = sorted((d for d in self.co_users.values() if d[field] == value), key=lambda d: d["added_at"])
        return [_co_user(copy.deepcopy(d)) for d in found]

    async def co_users_of(self, owner_id: str) -> list[CoUser]:
        return self._co_users("owner_id", owner_id)

    async def memberships(self, account_id: str) -> list[CoUser]:
        return self._co_users("account_id", account_id)

    async def remove_co_user(self, tx: Tx, owner_id: str, account_id: str) -> bool:
        return self.co_users.pop(f"{owner_id}:{account_id}", None) is not None

    async def remove_account(self, tx: Tx, account_id: str) -> int:
        gone = [k for k, d in self.co_users.items() if account_id in (d["account_id"], d["owner_id"])]
        for k in gone:
            del self.co_users[k]
        self.households.pop(account_id, None)
        return len(gone)

    async def representative(self, owner_id: str, tx: Tx | None = None) -> str:
        return self.households.get(owner_id, owner_id)

    async def set_representative(self, tx: Tx, owner_id: str, account_id: str) -> None:
        self.households[owner_id] = account_id

    # -- sliding-window rate limits ------------------------------------------------------------------
    def _window(self, bucket: str, window_start: datetime) -> list[datetime]:
        return sorted(at for b, at in self.hits if b == bucket and at > window_start)

    async def hit(self, bucket: str, now: datetime, window_start: datetime) -> int:
        self.hits.append((bucket, now))
        return len(self._window(bucket, window_start))

    async def forgive(self, bucket: str) -> None:
        mine = [h for h in self.hits if h[0] == bucket]
        if mine:
            self.hits.remove(max(mine, key=lambda h: h[1]))

    async def nth_hit(self, bucket: str, window_start: datetime, n: int) -> datetime | None:
        inside = self._window(bucket, window_start)
        return inside[n] if n < len(inside) else None


if TYPE_CHECKING:  # mypy holds both adapters to the protocol the use cases are written against
    from kagi_invite.adapters.invitations import InvitationRepository
    from kagi_invite.adapters.repository import StepUpRepository
    from kagi_invite.service.ports import Invitations, StepUps
    from kagi_shared.mongo import Store

    def _implements(store: Store) -> tuple[StepUps, StepUps, Invitations, Invitations]:
        return MemoryStepUps(), StepUpRepository(store), MemoryInvitations(), InvitationRepository(store)

