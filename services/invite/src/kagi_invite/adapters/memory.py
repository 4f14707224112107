"""In-memory adapters for the fast tier: the protocols of ``service/ports.py`` kept in dicts, held to the Mongo
adapters' behaviour by ``tests/contract/``."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import TYPE_CHECKING, cast

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


if TYPE_CHECKING:  # mypy holds both adapters to the protocol the use cases are written against
    from kagi_invite.adapters.repository import StepUpRepository
    from kagi_invite.service.ports import StepUps
    from kagi_shared.mongo import Store

    def _implements(store: Store) -> tuple[StepUps, StepUps]:
        return MemoryStepUps(), StepUpRepository(store)

