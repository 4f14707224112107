"""Step-up codes and verified step-up windows in MongoDB (database ``kagi_invite``)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, IndexModel, ReturnDocument

from kagi_invite.adapters.documents import Collection, Collections
from kagi_invite.domain.step_up import StepUpCode
from kagi_shared.mongo import Tx, doc_struct, struct_doc

CODES = "step_up_codes"
WINDOWS = "step_up_windows"


class StepUpRepository(Collections):
    codes = Collection(CODES, IndexModel([("account_id", 1), ("issued_at", DESCENDING)]))
    windows = Collection(WINDOWS, IndexModel([("valid_until", 1)], expireAfterSeconds=0))

    async def replace_active(self, tx: Tx, code: StepUpCode) -> None:
        """A re-issue invalidates the previous code."""
        await self.codes.update_many({"account_id": code.account_id, "status": "active"},
                                     {"$set": {"status": "replaced"}}, session=tx.session)
        await self.codes.insert_one(struct_doc(code), session=tx.session)

    async def latest(self, account_id: str, tx: Tx | None = None) -> StepUpCode | None:
        doc = await self.codes.find_one({"account_id": account_id}, sort=[("issued_at", DESCENDING)],
                                        session=tx.session if tx else None)
        return doc_struct(doc, StepUpCode) if doc else None

    async def claim_attempt(self, code_id: str, max_attempts: int) -> StepUpCode | None:
        """Count one attempt on an active code that has attempts left, atomically; None when it has none."""
        return await claim_attempt(self.codes, code_id, max_attempts)

    async def set_status(self, tx: Tx, code_id: str, status: str, expected: str = "active") -> bool:
        result = await self.codes.update_one({"_id": code_id, "status": expected}, {"$set": {"status": status}},
                                             session=tx.session)
        return result.modified_count == 1

    async def open_window(self, tx: Tx, account_id: str, session_id: str, until: datetime) -> None:
        await self.windows.update_one({"_id": _window_id(account_id, session_id)},
                                      {"$set": {"account_id": account_id, "valid_until": until}}, upsert=True,
                                      session=tx.session)

    async def window(self, account_id: str, session_id: str | None) -> datetime | None:
        """The window of this login session only: another session of the account (a new login after a logout,
        a password change or a lock) has none until it verifies a code itself."""
        if not session_id:
            return None
        doc = await self.windows.find_one({"_id": _window_id(account_id, session_id)})
        return doc["valid_until"] if doc else None


async def claim_attempt(codes: Any, code_id: str, max_attempts: int) -> StepUpCode | None:
    """The attempt is counted before the guess is judged: concurrent guesses each take one of the code's
    attempts, so no more than ``max_attempts`` guesses are ever compared, however many arrive at once."""
    doc = await codes.find_one_and_update({"_id": code_id, "status": "active", "attempts": {"$lt": max_attempts}},
                                          {"$inc": {"attempts": 1}}, return_document=ReturnDocument.AFTER)
    return doc_struct(doc, StepUpCode) if doc else None


def _window_id(account_id: str, session_id: str) -> str:
    return f"{account_id}/{session_id}"
