"""``Store.transaction``: what runs after the commit sees the committed writes, and nothing runs for a rollback."""

from __future__ import annotations

from typing import Any

import pytest

from kagi_shared.mongo import Store, Tx


async def test_after_commit_runs_once_the_writes_are_visible(store_factory: Any) -> None:
    store: Store = await store_factory("tx")
    seen: list[int] = []

    async def work(tx: Tx) -> None:
        await tx.db["things"].insert_one({"_id": "a"}, session=tx.session)
        tx.after_commit(lambda: seen.append(1))
        await tx.db["things"].insert_one({"_id": "b"}, session=tx.session)
        assert seen == []  # not while the transaction is still open

    await store.transaction(work)
    assert seen == [1]
    assert await store.db["things"].count_documents({}) == 2


async def test_after_commit_does_not_run_for_a_rolled_back_transaction(store_factory: Any) -> None:
    store: Store = await store_factory("tx")
    seen: list[int] = []

    async def work(tx: Tx) -> None:
        await tx.db["things"].insert_one({"_id": "b"}, session=tx.session)
        tx.after_commit(lambda: seen.append(1))
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        await store.transaction(work)
    assert seen == []
    assert await store.db["things"].find_one({"_id": "b"}) is None
