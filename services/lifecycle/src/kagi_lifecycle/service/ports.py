"""What the use cases need from storage, as protocols: the Mongo adapters (``adapters/``) and the in-memory ones
(``adapters/memory.py``) both implement them, and one contract test per repository holds both to the same
behaviour (``tests/contract/``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from kagi_lifecycle.domain.accounts import Account
from kagi_shared.mongo import Tx


class Accounts(Protocol):
    async def add(self, tx: Tx, account: Account) -> None:
        """Raises ``AccountExists`` when the login ID is taken."""
        ...

    async def by_login_id(self, login_id: str, tx: Tx | None = None) -> Account | None: ...

    async def get(self, account_id: str, tx: Tx | None = None) -> Account | None: ...

    async def update(self, tx: Tx, account_id: str, changes: dict[str, Any], *,
                     when: dict[str, Any] | None = None, bump_session: bool = False) -> bool: ...

    async def end_sessions(self, tx: Tx, account_id: str) -> None: ...

    async def move_last_login(self, tx: Tx, account_id: str, at: datetime, changes: dict[str, Any], *,
                              active_only: bool) -> Account | None:
        """The account as this write left it, or None when the last login did not move."""
        ...

    async def take_totp_step(self, tx: Tx, account_id: str, step: int) -> bool: ...

    async def replace_hash(self, account_id: str, verified: str, fresh: str) -> bool: ...

    async def increment_failures(self, tx: Tx, account_id: str) -> int: ...

    async def increment_secret_failures(self, tx: Tx, account_id: str) -> int | None: ...

    async def due_ids(self, as_of: datetime, limit: int = 0) -> list[str]: ...

    async def due(self, as_of: datetime, limit: int = 0) -> list[Account]: ...

    async def session_state(self, account_id: str) -> tuple[int, str, list[str]] | None: ...

    async def schedule_unscheduled(self, plan: Callable[[datetime | None, datetime], tuple[str, datetime]]) -> int:
        """Once per database: give accounts stored before the ladder existed their first stage."""
        ...
