"""In-memory adapters for the fast tier: the same protocols as the Mongo ones (``service/ports.py``), held to the
same behaviour by the contract tests (``tests/contract/``), so a use case runs in milliseconds without a database.

Documents are kept as the Mongo adapter stores them (``struct_doc``/``doc_struct``); a transaction that raises
leaves every table as it was (``kagi_shared.memory.MemoryTransactions``), like an aborted MongoDB transaction.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from kagi_lifecycle.domain.accounts import Account, AccountExists
from kagi_shared.memory import MemoryTransactions
from kagi_shared.mongo import Doc, Tx, doc_struct, struct_doc


def _matches(doc: Doc, when: dict[str, Any]) -> bool:
    return all(doc.get(field) == value for field, value in when.items())


class MemoryAccounts:
    """``AccountRepository`` in a dict: the login ID unique, ``when`` as field equality, the named conditions
    (last login only forward, a TOTP step once) as the Mongo adapter writes them."""

    def __init__(self, transactions: MemoryTransactions | None = None) -> None:
        self.docs: dict[str, Doc] = {}
        self.migrated = False
        if transactions is not None:
            transactions.track(self)

    def snapshot(self) -> object:
        return copy.deepcopy(self.docs), self.migrated

    def restore(self, state: object) -> None:
        self.docs, self.migrated = cast(tuple[dict[str, Doc], bool], state)

    async def add(self, tx: Tx, account: Account) -> None:
        doc = struct_doc(account)
        if doc["_id"] in self.docs or any(d["login_id"] == doc["login_id"] for d in self.docs.values()):
            raise AccountExists(account.login_id)
        self.docs[doc["_id"]] = doc

    async def by_login_id(self, login_id: str, tx: Tx | None = None) -> Account | None:
        found = next((d for d in self.docs.values() if d["login_id"] == login_id), None)
        return doc_struct(copy.deepcopy(found), Account) if found else None

    async def get(self, account_id: str, tx: Tx | None = None) -> Account | None:
        found = self.docs.get(account_id)
        return doc_struct(copy.deepcopy(found), Account) if found else None

    def _set(self, account_id: str, changes: dict[str, Any], bump_session: bool,
             condition: Callable[[Doc], bool]) -> bool:
        doc = self.docs.get(account_id)
        if doc is None or not condition(doc):
            return False
        doc.update(copy.deepcopy(changes))
        if bump_session:
            doc["session_version"] = doc.get("session_version", 0) + 1
        return True

    async def update(self, tx: Tx, account_id: str, changes: dict[str, Any], *,
                     when: dict[str, Any] | None = None, bump_session: bool = False) -> bool:
        return self._set(account_id, changes, bump_session, lambda d: _matches(d, when or {}))

    async def end_sessions(self, tx: Tx, account_id: str) -> None:
        self._set(account_id, {}, True, lambda d: True)

    async def move_last_login(self, tx: Tx, account_id: str, at: datetime, changes: dict[str, Any], *,
                              active_only: bool) -> Account | None:
        def moves(doc: Doc) -> bool:
            status_ok = doc["status"] == "active" if active_only else doc["status"] != "purged"
            return status_ok and (doc.get("last_login_at") is None or doc["last_login_at"] < at)

        return await self.get(account_id) if self._set(account_id, changes, False, moves) else None

    async def take_totp_step(self, tx: Tx, account_id: str, step: int) -> bool:
        return self._set(account_id, {"totp_last_step": step}, False,
                         lambda d: d["status"] == "active" and d.get("totp_last_step", 0) < step)

    async def replace_hash(self, account_id: str, verified: str, fresh: str) -> bool:
        return self._set(account_id, {"password_hash": fresh}, False, lambda d: d["password_hash"] == verified)

    async def increment_failures(self, tx: Tx, account_id: str) -> int:
        doc = self.docs.get(account_id)
        if doc is None:
            return 0
        doc["failed_logins"] = doc.get("failed_logins", 0) + 1
        return int(doc["failed_logins"])

    async def increment_secret_failures(self, tx: Tx, account_id: str) -> int | None:
        doc = self.docs.get(account_id)
        if doc is None or doc["status"] != "active":
            return None
        doc["secret_failures"] = doc.get("secret_failures", 0) + 1
        return int(doc["secret_failures"])

    def _due(self, as_of: datetime, limit: int) -> list[Doc]:
        due = sorted((d for d in self.docs.values() if d.get("next_stage_at") is not None
                      and d["next_stage_at"] <= as_of), key=lambda d: d["next_stage_at"])
        return due[:limit] if limit else due

    async def due_ids(self, as_of: datetime, limit: int = 0) -> list[str]:
        return [str(d["_id"]) for d in self._due(as_of, limit)]

    async def due(self, as_of: datetime, limit: int = 0) -> list[Account]:
        return [doc_struct(copy.deepcopy(d), Account) for d in self._due(as_of, limit)]

    async def session_state(self, account_id: str) -> tuple[int, str, list[str]] | None:
        doc = self.docs.get(account_id)
        if doc is None:
            return None
        return int(doc.get("session_version", 0)), str(doc.get("status", "active")), list(doc.get("roles", []))

    async def schedule_unscheduled(self, plan: Callable[[datetime | None, datetime], tuple[str, datetime]]) -> int:
        if self.migrated:
            return 0
        count = 0
        for doc in self.docs.values():
            if "next_stage_at" not in doc and doc["status"] != "purged":
                stage, due_at = plan(doc.get("last_login_at"), doc["issued_at"])
                doc.update(ladder_stage=None, next_stage=stage, next_stage_at=due_at)
                count += 1
        self.migrated = True
        return count


if TYPE_CHECKING:  # mypy holds both adapters to the protocols the use cases are written against
    from kagi_lifecycle.adapters.repository import AccountRepository
    from kagi_lifecycle.service.ports import Accounts
    from kagi_shared.mongo import Store, Transactions

    def _implements(store: Store) -> tuple[Accounts, Accounts, Transactions, Transactions]:
        return MemoryAccounts(), AccountRepository(store), MemoryTransactions(), store
