"""What the use cases need from storage, as protocols: the Mongo adapters (``adapters/``) and the in-memory ones
(``adapters/memory.py``) both implement them, held to the same behaviour by one contract test per repository
(``tests/contract/``)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from kagi_invite.domain.step_up import StepUpCode
from kagi_shared.mongo import Tx


class StepUps(Protocol):
    async def replace_active(self, tx: Tx, code: StepUpCode) -> None:
        """Store ``code``; the account's previous active code becomes ``replaced``."""
        ...

    async def latest(self, account_id: str, tx: Tx | None = None) -> StepUpCode | None: ...

    async def claim_attempt(self, code_id: str, max_attempts: int) -> StepUpCode | None:
        """Count one attempt on an active code with attempts left, atomically; None when it has none."""
        ...

    async def set_status(self, tx: Tx, code_id: str, status: str, expected: str = "active") -> bool: ...

    async def open_window(self, tx: Tx, account_id: str, session_id: str, until: datetime) -> None: ...

    async def window(self, account_id: str, session_id: str | None) -> datetime | None: ...
