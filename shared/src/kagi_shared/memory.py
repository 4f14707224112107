"""The in-memory side of the fast test tier: ``Store.transaction`` without a database, for repositories kept in
dicts (each service's ``adapters/memory.py``), which one contract test per repository holds to the Mongo
adapter's behaviour."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

from kagi_shared.mongo import Doc, Tx

T = TypeVar("T")


class Table(Protocol):
    def snapshot(self) -> object: ...

    def restore(self, state: object) -> None: ...


class MemoryTransactions:
    """``fn`` gets a ``Tx`` without a session; its published events land in ``outbox`` when it returns, and nothing
    of it stays in the tracked tables when it raises (an aborted MongoDB transaction)."""

    def __init__(self) -> None:
        self.tables: list[Table] = []
        self.outbox: list[Doc] = []

    def track(self, table: Table) -> None:
        self.tables.append(table)

    async def transaction(self, fn: Callable[[Tx], Awaitable[T]]) -> T:
        before = [table.snapshot() for table in self.tables]
        tx = Tx(cast(Any, None), cast(Any, None))
        try:
            result = await fn(tx)
        except BaseException:
            for table, state in zip(self.tables, before, strict=True):
                table.restore(state)
            raise
        self.outbox.extend(tx.outbox)
        for hook in tx.committed:
            hook()
        return result

